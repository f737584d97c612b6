/**
 * The datadir as the init container sees it, and the staging area a clone is built in.
 *
 * The staging directory lives inside DATA_DIR because DATA_DIR is usually the volume's mount
 * point: only there is a rename guaranteed to stay on one filesystem. A clone is accepted into
 * DATA_DIR by renaming entries one by one with `mysql/` last, so a datadir that holds `mysql/`
 * is complete; a marker written after prepare makes the move resumable after a crash.
 */
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataDirError } from '../core/errors.js';
import { fsyncDir } from '../core/files.js';

export const STAGING_NAME = '.mysql-agent-clone';
const PREPARED_MARKER = '.mysql-agent-prepared';
/** Entries a fresh volume may carry that say nothing about MySQL data. */
const IGNORABLE = new Set(['lost+found', STAGING_NAME]);

export type DataDirState =
  | { readonly kind: 'initialised'; readonly leftoverStaging: boolean }
  /** A prepared clone was being moved in when the last run stopped. */
  | { readonly kind: 'prepared-staging' }
  | { readonly kind: 'empty'; readonly leftoverStaging: boolean }
  /** Files without `mysql/`: not ours to delete. */
  | { readonly kind: 'foreign'; readonly entries: readonly string[] };

export const stagingDir = (dataDir: string) => join(dataDir, STAGING_NAME);

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export async function inspectDataDir(dataDir: string): Promise<DataDirState> {
  let entries: string[];
  try {
    entries = await readdir(dataDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DataDirError(`DATA_DIR=${dataDir} does not exist: mount the data volume there or fix DATA_DIR`);
    }
    throw err;
  }
  const leftoverStaging = entries.includes(STAGING_NAME);
  if (entries.includes('mysql')) return { kind: 'initialised', leftoverStaging };
  if (leftoverStaging && (await exists(join(stagingDir(dataDir), PREPARED_MARKER)))) return { kind: 'prepared-staging' };
  const foreign = entries.filter((e) => !IGNORABLE.has(e));
  if (foreign.length > 0) return { kind: 'foreign', entries: foreign };
  return { kind: 'empty', leftoverStaging };
}

export function foreignDataDirError(dataDir: string, entries: readonly string[]): DataDirError {
  const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? `, … (${entries.length} entries)` : '');
  return new DataDirError(
    `DATA_DIR=${dataDir} holds files but no mysql/ (${shown}): it is not an initialised datadir and not an empty one; move those files away or empty the volume, then restart the pod`,
  );
}

/** Removes any staging left by an earlier run and creates it empty. */
export async function resetStaging(dataDir: string): Promise<string> {
  const dir = stagingDir(dataDir);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { mode: 0o750 });
  return dir;
}

export async function removeStaging(dataDir: string): Promise<void> {
  await rm(stagingDir(dataDir), { recursive: true, force: true });
}

/** Marks a staging directory as prepared: from here on the move into DATA_DIR is resumed, not redone. */
export async function markPrepared(dataDir: string): Promise<void> {
  await writeFile(join(stagingDir(dataDir), PREPARED_MARKER), `${new Date().toISOString()}\n`);
  await fsyncDir(stagingDir(dataDir));
}

/**
 * Moves a prepared clone into DATA_DIR, `mysql/` last, then drops the staging directory.
 * Each rename is atomic, so after a crash every entry is either still in staging or in place:
 * an entry in both places is someone else's file, which a rename would overwrite (or fail on
 * with ENOTEMPTY at every restart), so nothing is moved.
 */
export async function promoteStaging(dataDir: string): Promise<{ entries: number }> {
  const dir = stagingDir(dataDir);
  const entries = (await readdir(dir)).filter((e) => e !== PREPARED_MARKER);
  const present = new Set(await readdir(dataDir));
  const collisions = entries.filter((e) => present.has(e)).sort();
  if (collisions.length > 0) {
    throw new DataDirError(
      `DATA_DIR=${dataDir} already holds ${collisions.join(', ')}, which the prepared clone in ${STAGING_NAME} also has: they are not the clone's to replace; move them away (or empty the volume), then restart the pod`,
    );
  }
  const ordered = [...entries.filter((e) => e !== 'mysql'), ...entries.filter((e) => e === 'mysql')];
  for (const entry of ordered) {
    if (entry === 'mysql') await fsyncDir(dataDir);
    await rename(join(dir, entry), join(dataDir, entry));
  }
  await fsyncDir(dataDir);
  await rm(dir, { recursive: true, force: true });
  return { entries: ordered.length };
}
