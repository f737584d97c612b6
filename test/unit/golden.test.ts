/**
 * No test writes its own expectations: vitest's snapshot matchers write a missing snapshot from
 * the code under test and pass (and `-u` rewrites a differing one), so the suite uses none of
 * them; golden files go through test/golden.ts, which only reads.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readGolden } from '../golden.js';

const TEST = join(import.meta.dirname, '..');
const WRITERS = ['toMatch' + 'Snapshot', 'toMatch' + 'FileSnapshot', 'toMatch' + 'InlineSnapshot', 'toThrowError' + 'MatchingInlineSnapshot', 'toThrowError' + 'MatchingSnapshot'];

describe('golden files', () => {
  it('no test file uses a snapshot matcher', async () => {
    const files = (await readdir(TEST, { recursive: true })).filter((f) => f.endsWith('.ts'));
    const offenders: string[] = [];
    for (const file of files) {
      const text = await readFile(join(TEST, file), 'utf8');
      for (const writer of WRITERS) if (text.includes(writer)) offenders.push(`${relative(TEST, join(TEST, file))}: ${writer}`);
    }
    expect(files.length).toBeGreaterThan(40);
    expect(offenders).toEqual([]);
  });

  it('a missing golden file fails with its name instead of being written', async () => {
    await expect(readGolden('no-such-golden.txt', import.meta.dirname)).rejects.toThrow(/no-such-golden\.txt is missing: tests never write their own expectations/);
  });
});
