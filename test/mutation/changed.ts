/**
 * The files CI mutates (`npm run mutate -- --changed`): those of stryker.config.mjs's `mutate`
 * set that differ from BASE (the merge base with main; on main itself, its last commit's parent),
 * comma-separated for `stryker run --mutate`; nothing when none changed. Negated globs (`!…`)
 * exclude, as in the config.
 */
import { execFileSync } from 'node:child_process';
import { matchesGlob } from 'node:path';
import config from '../../stryker.config.mjs';

export function mutatedAmong(files: readonly string[], globs: readonly string[]): string[] {
  const include = globs.filter((g) => !g.startsWith('!'));
  const exclude = globs.filter((g) => g.startsWith('!')).map((g) => g.slice(1));
  return files.filter((f) => include.some((g) => matchesGlob(f, g)) && !exclude.some((g) => matchesGlob(f, g)));
}

const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();

if (import.meta.url === `file://${process.argv[1]}`) {
  const target = process.argv[2] ?? 'main';
  let base: string;
  try {
    base = git('merge-base', 'HEAD', target);
    if (base === git('rev-parse', 'HEAD')) base = git('rev-parse', 'HEAD~1');
  } catch {
    // A shallow clone with no parent, or no such branch: there is no change to measure.
    console.error(`mutate: no base to compare with (${target}, or HEAD~1 on it)`);
    process.exit(0);
  }
  const changed = git('diff', '--name-only', '--diff-filter=d', base, '--').split('\n').filter(Boolean);
  process.stdout.write(mutatedAmong(changed, (config as { mutate: string[] }).mutate).join(','));
}
