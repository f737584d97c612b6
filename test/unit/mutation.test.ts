/** The mutation-testing glue (test/mutation/): the score per folder, the floor, the checks that allow no survivor. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FLOOR, NO_SURVIVORS, summarize } from '../mutation/score.js';

const PROTOCOL = [
  'export function bearerToken(header: string | undefined): string | null {',
  '  return null;',
  '}',
  '',
  'export function tokensEqual(given: string, expected: string): boolean {',
  '  return timingSafeEqual(a, b);',
  '}',
  'export function statusTrailer(failure: string | null): string {',
  "  return failure === null ? SUCCESS : 'Failed';",
  '}',
  'export function parseStatusFile(text: string): { readonly status: string; readonly bytes: number | null } {',
  '  return { status: text, bytes: null };',
  '}',
].join('\n');

const mutant = (status: string, line: number) => ({ mutatorName: 'BooleanLiteral', status, replacement: 'true', location: { start: { line, column: 3 }, end: { line } } });

describe('summarize', () => {
  it('scores each folder as detected over valid, leaving out mutants that do not compile', () => {
    const { lines, failures } = summarize({
      files: {
        'agent/mysql/gtid.ts': { source: '', mutants: [mutant('Killed', 1), mutant('Timeout', 2), mutant('Survived', 3), mutant('CompileError', 4)] },
        'agent/stream/protocol.ts': { source: PROTOCOL, mutants: [mutant('Killed', 2), mutant('Killed', 6)] },
      },
    });
    expect(lines.find((l) => l.startsWith('agent/mysql'))).toMatch(/^agent\/mysql\s+66\.7 %\s+2 \/ 3\s+survived\s+1/);
    expect(lines.find((l) => l.startsWith('agent/stream'))).toMatch(/100\.0 %/);
    expect(lines.at(-1)).toMatch(/^all\s+80\.0 %\s+4 \/ 5/);
    expect(failures).toEqual(FLOOR > 80 ? [expect.stringContaining('below the floor')] : []);
  });

  it('fails on a survivor inside the token check, and only there', () => {
    const { failures } = summarize({
      files: { 'agent/stream/protocol.ts': { source: PROTOCOL, mutants: [...Array(20)].map(() => mutant('Killed', 2)).concat([mutant('Survived', 6), mutant('NoCoverage', 5)]) } },
    });
    expect(failures).toEqual([
      'the token check: BooleanLiteral mutant survived at agent/stream/protocol.ts:6:3 (tokensEqual): true',
      'the token check: BooleanLiteral mutant nocoverage at agent/stream/protocol.ts:5:3 (tokensEqual): true',
    ]);
  });

  it('fails below the floor', () => {
    const { failures } = summarize({ files: { 'agent/core/retry.ts': { source: '', mutants: [mutant('Survived', 1), mutant('Killed', 2)] } } });
    expect(failures).toEqual([`mutation score 50.0 % is below the floor of ${FLOOR} % (test/mutation/score.ts)`]);
  });
});

describe('the checks that allow no survivor', () => {
  it('each names code that is in the tree (a renamed function or a moved span would silently guard nothing)', () => {
    const files = Object.fromEntries(NO_SURVIVORS.map((c) => [c.file, { source: readFileSync(join(import.meta.dirname, '../..', c.file), 'utf8'), mutants: [] }]));
    expect(summarize({ files }).failures).toEqual([]);
    expect(summarize({ files: { ...files, 'agent/stream/protocol.ts': { source: '', mutants: [] } } }).failures).toContain(
      'agent/stream/protocol.ts: no function parseStatusFile (the trailer check)',
    );
  });
});
