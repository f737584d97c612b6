import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STAGING_NAME } from '../../../agent/init/datadir.js';
import { estimateBackupBytes, freeBytes } from '../../../agent/stream/sizes.js';

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
