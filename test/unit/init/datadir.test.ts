import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  STAGING_NAME,
  foreignDataDirError,
  inspectDataDir,
  markPrepared,
  promoteStaging,
  removeStaging,
  resetStaging,
  stagingDir,
} from '../../../agent/init/datadir.js';
import { DataDirError } from '../../../agent/core/errors.js';

/**
 * `rename` is wrapped so that the order of the moves can be observed and a crash before a
 * given entry can be simulated; everything else is the real filesystem.
 */
const spy = vi.hoisted(() => ({ renamed: [] as string[], failBefore: null as string | null }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    rename: async (from: string, to: string) => {
      const name = from.split('/').at(-1)!;
      if (spy.failBefore === name) {
        spy.failBefore = null;
        throw Object.assign(new Error(`simulated crash before moving ${name}`), { code: 'EIO' });
      }
      spy.renamed.push(name);
      return actual.rename(from, to);
    },
  };
});

let dataDir: string;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'datadir-'));
  spy.renamed.length = 0;
  spy.failBefore = null;
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** A prepared clone in staging: data files, a schema directory and mysql/. */
async function preparedClone(): Promise<string> {
  const dir = await resetStaging(dataDir);
  await writeFile(join(dir, 'ibdata1'), 'ibdata');
  await writeFile(join(dir, 'xtrabackup_binlog_info'), 'mysql-bin.000001\t4\n');
  await mkdir(join(dir, 'app'));
  await writeFile(join(dir, 'app', 't.ibd'), 'rows');
  await mkdir(join(dir, 'mysql'));
  await writeFile(join(dir, 'mysql', 'user.MAD'), 'users');
  await markPrepared(dataDir);
  return dir;
}

describe('inspectDataDir', () => {
  it('calls a fresh directory empty', async () => {
    expect(await inspectDataDir(dataDir)).toEqual({ kind: 'empty', leftoverStaging: false });
  });

  it('calls a volume holding only lost+found empty', async () => {
    await mkdir(join(dataDir, 'lost+found'));
    expect(await inspectDataDir(dataDir)).toEqual({ kind: 'empty', leftoverStaging: false });
  });

  it('calls a directory with mysql/ initialised', async () => {
    await mkdir(join(dataDir, 'mysql'));
    await writeFile(join(dataDir, 'ibdata1'), '');
    expect(await inspectDataDir(dataDir)).toEqual({ kind: 'initialised', leftoverStaging: false });
  });

  it('reports a staging directory left next to an initialised datadir', async () => {
    await mkdir(join(dataDir, 'mysql'));
    await mkdir(stagingDir(dataDir));
    expect(await inspectDataDir(dataDir)).toEqual({ kind: 'initialised', leftoverStaging: true });
  });

  it('calls files without mysql/ foreign and lists them, ignoring lost+found and staging', async () => {
    await mkdir(join(dataDir, 'lost+found'));
    await mkdir(stagingDir(dataDir));
    await writeFile(join(dataDir, 'ibdata1'), '');
    await writeFile(join(dataDir, 'notes.txt'), '');
    const state = await inspectDataDir(dataDir);
    expect(state.kind).toBe('foreign');
    expect(state.kind === 'foreign' && [...state.entries].sort()).toEqual(['ibdata1', 'notes.txt']);
  });

  it('calls an unprepared leftover staging directory empty, with leftoverStaging', async () => {
    await resetStaging(dataDir);
    await writeFile(join(stagingDir(dataDir), 'ibdata1'), 'half a clone');
    expect(await inspectDataDir(dataDir)).toEqual({ kind: 'empty', leftoverStaging: true });
  });

  it('recognises a prepared staging directory', async () => {
    await preparedClone();
    expect(await inspectDataDir(dataDir)).toEqual({ kind: 'prepared-staging' });
  });

  it('throws DataDirError naming DATA_DIR when the directory does not exist', async () => {
    const missing = join(dataDir, 'missing');
    const err = await inspectDataDir(missing).then(
      () => expect.unreachable('inspectDataDir should have failed'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DataDirError);
    expect((err as Error).message).toContain(`DATA_DIR=${missing}`);
  });
});

describe('foreignDataDirError', () => {
  it('names DATA_DIR and at most five entries', () => {
    const err = foreignDataDirError('/var/lib/mysql', ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    expect(err).toBeInstanceOf(DataDirError);
    expect(err.message).toContain('DATA_DIR=/var/lib/mysql');
    expect(err.message).toContain('a, b, c, d, e, … (7 entries)');
    expect(err.message).not.toMatch(/\bf\b|\bg\b/);
  });
});

describe('resetStaging / removeStaging', () => {
  it('creates an empty staging directory inside DATA_DIR', async () => {
    const dir = await resetStaging(dataDir);
    expect(dir).toBe(join(dataDir, STAGING_NAME));
    expect(await readdir(dir)).toEqual([]);
  });

  it('wipes whatever an earlier attempt left', async () => {
    const dir = await resetStaging(dataDir);
    await mkdir(join(dir, 'mysql'));
    await writeFile(join(dir, 'mysql', 'half.ibd'), 'x');
    await writeFile(join(dir, '.mysql-agent-prepared'), 'x');
    await resetStaging(dataDir);
    expect(await readdir(dir)).toEqual([]);
    expect(await inspectDataDir(dataDir)).toEqual({ kind: 'empty', leftoverStaging: true });
  });

  it('removeStaging deletes it and tolerates its absence', async () => {
    await preparedClone();
    await removeStaging(dataDir);
    expect(await exists(stagingDir(dataDir))).toBe(false);
    await removeStaging(dataDir);
    expect(await readdir(dataDir)).toEqual([]);
  });
});

describe('promoteStaging', () => {
  it('moves every entry into DATA_DIR, mysql/ last, and drops staging', async () => {
    await preparedClone();
    spy.renamed.length = 0;
    const result = await promoteStaging(dataDir);
    expect(result).toEqual({ entries: 4 });
    expect((await readdir(dataDir)).sort()).toEqual(['app', 'ibdata1', 'mysql', 'xtrabackup_binlog_info']);
    expect(await readFile(join(dataDir, 'app', 't.ibd'), 'utf8')).toBe('rows');
    expect(await readFile(join(dataDir, 'mysql', 'user.MAD'), 'utf8')).toBe('users');
    expect(await exists(stagingDir(dataDir))).toBe(false);
    expect(await exists(join(dataDir, '.mysql-agent-prepared'))).toBe(false);
    expect(spy.renamed).toHaveLength(4);
    expect(spy.renamed.at(-1)).toBe('mysql');
    expect(await inspectDataDir(dataDir)).toEqual({ kind: 'initialised', leftoverStaging: false });
  });

  it('keeps the datadir "not initialised" when it stops before mysql/, and resumes', async () => {
    await preparedClone();
    spy.failBefore = 'mysql';
    await expect(promoteStaging(dataDir)).rejects.toThrow(/simulated crash/);
    // Everything but mysql/ has moved: the datadir must not look initialised.
    expect(await exists(join(dataDir, 'ibdata1'))).toBe(true);
    expect(await exists(join(dataDir, 'mysql'))).toBe(false);
    expect(await inspectDataDir(dataDir)).toEqual({ kind: 'prepared-staging' });

    await promoteStaging(dataDir);
    expect((await readdir(dataDir)).sort()).toEqual(['app', 'ibdata1', 'mysql', 'xtrabackup_binlog_info']);
    expect(await inspectDataDir(dataDir)).toEqual({ kind: 'initialised', leftoverStaging: false });
  });

  it('resumes a move that a previous run left half done', async () => {
    const dir = await preparedClone();
    // The previous run moved two entries before it was killed.
    await rename(join(dir, 'ibdata1'), join(dataDir, 'ibdata1'));
    await rename(join(dir, 'app'), join(dataDir, 'app'));
    expect(await inspectDataDir(dataDir)).toEqual({ kind: 'prepared-staging' });
    spy.renamed.length = 0;

    const result = await promoteStaging(dataDir);
    expect(result).toEqual({ entries: 2 });
    expect(spy.renamed).toEqual(['xtrabackup_binlog_info', 'mysql']);
    expect((await readdir(dataDir)).sort()).toEqual(['app', 'ibdata1', 'mysql', 'xtrabackup_binlog_info']);
    expect(await readFile(join(dataDir, 'app', 't.ibd'), 'utf8')).toBe('rows');
    expect(await exists(stagingDir(dataDir))).toBe(false);
  });

  it('refuses, moving nothing, when an entry of the clone is already in DATA_DIR (files of someone else)', async () => {
    await preparedClone();
    await mkdir(join(dataDir, 'app'));
    await writeFile(join(dataDir, 'app', 'theirs.ibd'), 'their rows');
    await writeFile(join(dataDir, 'ibdata1'), 'their tablespace');
    spy.renamed.length = 0;
    const err = await promoteStaging(dataDir).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DataDirError);
    expect((err as Error).message).toContain(`DATA_DIR=${dataDir} already holds app, ibdata1, which the prepared clone in ${STAGING_NAME} also has`);
    expect(spy.renamed).toEqual([]);
    expect(await readFile(join(dataDir, 'ibdata1'), 'utf8')).toBe('their tablespace');
    expect(await readdir(join(dataDir, 'app'))).toEqual(['theirs.ibd']);
  });

  it('finishes a move that stopped after mysql/ but before staging was removed', async () => {
    const dir = await preparedClone();
    for (const entry of ['ibdata1', 'app', 'xtrabackup_binlog_info', 'mysql']) {
      await rename(join(dir, entry), join(dataDir, entry));
    }
    expect(await inspectDataDir(dataDir)).toEqual({ kind: 'initialised', leftoverStaging: true });
    expect(await promoteStaging(dataDir)).toEqual({ entries: 0 });
    expect(await exists(stagingDir(dataDir))).toBe(false);
    expect((await readdir(dataDir)).sort()).toEqual(['app', 'ibdata1', 'mysql', 'xtrabackup_binlog_info']);
  });
});
