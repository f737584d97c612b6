/**
 * Golden files are reviewed by a person and only ever read by the tests: a missing one fails
 * (vitest's file snapshots would write it from the code under test and pass). To change one,
 * edit it, or write the new output over it by hand and review the diff.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { expect } from 'vitest';

/** The reviewed text at `path` (absolute, or relative to `dir`); a missing file is an error saying so. */
export async function readGolden(path: string, dir = ''): Promise<string> {
  const file = isAbsolute(path) ? path : join(dir, path);
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new Error(`golden file ${file} is missing: tests never write their own expectations; write it by hand and review it`);
  }
}

/** Fails unless `actual` equals the reviewed golden file at `path` (relative to `dir`). */
export async function expectGolden(actual: string, path: string, dir = ''): Promise<void> {
  expect(actual).toBe(await readGolden(path, dir));
}
