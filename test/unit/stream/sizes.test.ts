import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STAGING_NAME } from '../../../agent/init/datadir.js';
import { NO_SPACE, estimateBackupBytes, filledUp, freeBytes, prepareMargin, progress } from '../../../agent/stream/sizes.js';

let dataDir: string;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sizes-'));
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('estimateBackupBytes / freeBytes', () => {
  it('counts database directories and the shared files the tool copies, not binlogs or staging', async () => {
    const put = async (path: string, bytes: number) => {
      await mkdir(join(dataDir, path, '..'), { recursive: true });
      await writeFile(join(dataDir, path), Buffer.alloc(bytes));
    };
    await put('shop/items.ibd', 1000);
    await put('shop/items.frm', 20);
    await put('mysql/user.MAD', 300);
    await put('ibdata1', 500);
    await put('undo001', 40);
    await put('aria_log.00000001', 100);
    await put('aria_log_control', 2);
    await put('mysql-bin.000001', 9999);
    await put('relay-bin.000002', 8888);
    await put('mysql-agent-replication.json', 77);
    await put(`${STAGING_NAME}/ibdata1`, 5555);
    await put('lost+found/x', 66);
    expect(await estimateBackupBytes(dataDir)).toBe(1000 + 20 + 300 + 500 + 40 + 100 + 2);
  });

  it('reports the free space of the filesystem holding a path', async () => {
    const free = await freeBytes(dataDir);
    expect(free).toBeGreaterThan(0);
    expect(Number.isSafeInteger(free)).toBe(true);
  });
});

describe('prepareMargin', () => {
  const MiB = 1024 * 1024;
  it('is 10% of the estimate, at least 64 MiB', () => {
    expect(prepareMargin(0)).toBe(64 * MiB);
    expect(prepareMargin(100 * MiB)).toBe(64 * MiB);
    expect(prepareMargin(640 * MiB)).toBe(64 * MiB);
    expect(prepareMargin(10_000 * MiB)).toBe(1000 * MiB);
  });
});

describe('filledUp', () => {
  // Verbatim lines of the tools on a full tmpfs here (MariaDB 10.11), and Node's error.
  const messages = [
    `mbstream: Error writing file './shop/t.ibd' (Errcode: 28 "No space left on device")`,
    '2026-12-01 10:16:45 0 [ERROR] InnoDB: preallocating 142606336 bytes for file shop/t.ibd failed with error 28',
    '[ERROR] InnoDB: Operating system error number 28 in a file operation.',
    "ENOSPC: no space left on device, open '/var/lib/mysql/.mysql-agent-clone/mysql-agent-clone.json'",
    'xtrabackup: Error writing file (Errcode: 28 - No space left on device)',
  ];

  it.each(messages)('recognises %s', (message) => {
    expect(NO_SPACE.test(message)).toBe(true);
    expect(filledUp(['something else', message], 10 * 1024 * 1024 * 1024)).toBe(true);
  });

  it('counts a filesystem left with less than 1 MiB free as filled up, whatever the tool said', () => {
    expect(filledUp(['InnoDB: Assertion failure in file ./storage/innobase/fil/fil0fil.cc line 696'], 512 * 1024)).toBe(true);
    expect(filledUp([null], 0)).toBe(true);
  });

  it('does not blame the disk for other failures', () => {
    expect(filledUp(['mbstream: failed to open ./xtrabackup_info: File exists', 'error 280 in something', 'Errcode: 2 "No such file or directory"', null], 5 * 1024 * 1024)).toBe(false);
  });
});

describe('progress', () => {
  it('gives percent, rate and ETA against the estimate', () => {
    expect(progress(250e6, 1000e6, 2000)).toEqual({ bytes: 250e6, rate_mb_s: 125, percent: 25, eta_s: 6, estimate_short: false });
  });

  it('never shows more than 100% when the estimate was short: it says so and gives no ETA', () => {
    expect(progress(1100e6, 1000e6, 4000)).toEqual({ bytes: 1100e6, rate_mb_s: 275, percent: 100, eta_s: null, estimate_short: true });
  });

  it('has no percent or ETA without an estimate, and no rate before any time passed', () => {
    expect(progress(5e6, null, 1000)).toMatchObject({ percent: null, eta_s: null, estimate_short: false, rate_mb_s: 5 });
    expect(progress(0, 1e9, 0)).toMatchObject({ rate_mb_s: 0, percent: 0, eta_s: null });
  });
});
