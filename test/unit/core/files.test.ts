import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fsyncDir, writeFileAtomic } from '../../../agent/core/files.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'files-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('writes the content and leaves no temporary file', async () => {
    await writeFileAtomic(join(dir, 'a.cnf'), '[mysqld]\n');
    expect(await readFile(join(dir, 'a.cnf'), 'utf8')).toBe('[mysqld]\n');
    expect(await readdir(dir)).toEqual(['a.cnf']);
  });

  it('replaces an existing file', async () => {
    await writeFile(join(dir, 'a.cnf'), 'old and longer content');
    await writeFileAtomic(join(dir, 'a.cnf'), 'new');
    expect(await readFile(join(dir, 'a.cnf'), 'utf8')).toBe('new');
  });

  it('writes bytes and applies the mode', async () => {
    await writeFileAtomic(join(dir, 'b'), new Uint8Array([0, 1, 2]), 0o600);
    expect([...(await readFile(join(dir, 'b')))]).toEqual([0, 1, 2]);
    expect((await stat(join(dir, 'b'))).mode & 0o777).toBe(0o600);
  });

  it('cleans its temporary file when the rename fails', async () => {
    // Renaming a file onto a non-empty directory fails (EISDIR / ENOTEMPTY).
    await mkdir(join(dir, 'target', 'inner'), { recursive: true });
    await expect(writeFileAtomic(join(dir, 'target'), 'x')).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['target']);
  });

  it('fails when the directory does not exist', async () => {
    await expect(writeFileAtomic(join(dir, 'missing', 'a'), 'x')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('fsyncDir', () => {
  it('syncs an existing directory and rejects a missing one', async () => {
    await expect(fsyncDir(dir)).resolves.toBeUndefined();
    await expect(fsyncDir(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
