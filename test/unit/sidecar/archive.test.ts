/**
 * The archiver's timing, over the fixture binary logs with a server and a store kept in memory:
 * a rotation falls due on the second the open file's oldest transaction reaches the interval, not
 * up to a tick later, and once a rotated file is in the store the lag is the new open file's.
 */
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readBinlogHead } from '../../../agent/mysql/binlog.js';
import type { Db } from '../../../agent/mysql/db.js';
import { BinlogArchiver, nextLookMs, tickMs } from '../../../agent/sidecar/archive.js';
import type { Store } from '../../../agent/store/s3.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/binlog');
const INTERVAL_MS = 60_000;

describe('nextLookMs', () => {
  it('looks at the tick when the open file holds no transaction', () => {
    expect(nextLookMs(INTERVAL_MS, null, 1_000_000)).toBe(tickMs(INTERVAL_MS));
    expect(tickMs(INTERVAL_MS)).toBe(5_000);
  });
  it('looks when the oldest transaction reaches the interval, if that comes before the tick', () => {
    expect(nextLookMs(INTERVAL_MS, 1_000, 1_000_000 + 58_000)).toBe(2_000);
    expect(nextLookMs(INTERVAL_MS, 1_000, 1_000_000 + 30_000)).toBe(5_000);
    expect(nextLookMs(INTERVAL_MS, 1_000, 1_000_000 + 61_000)).toBe(0);
  });
});

describe('BinlogArchiver.tick', () => {
  let dir: string;
  let files: { name: string; size: number }[];
  let flushes: number;
  let objects: Map<string, Buffer>;
  let firstTime: number;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'archive-unit-'));
    for (const f of ['mysql-bin.000001', 'mysql-bin.000002']) await copyFile(join(FIXTURES, f), join(dir, f));
    const open = await readFile(join(dir, 'mysql-bin.000002'));
    files = [
      { name: 'mysql-bin.000001', size: (await readFile(join(dir, 'mysql-bin.000001'))).length },
      { name: 'mysql-bin.000002', size: open.length },
    ];
    firstTime = (await readBinlogHead('mysql-bin.000002', (async function* () { yield open; })())).firstTransactionTime!;
    flushes = 0;
    objects = new Map();
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const db: Db = {
    async query(sql: string) {
      if (sql.includes('log_bin_basename')) return [{ b: '/var/lib/mysql/mysql-bin', d: '/var/lib/mysql/' }];
      if (sql.includes('server_id')) return [{ s: 100 }];
      if (sql === 'SHOW BINARY LOGS') return files.map((f) => ({ Log_name: f.name, File_size: f.size }));
      if (sql === 'FLUSH BINARY LOGS') {
        flushes++;
        // The new file: the fixture's events before its first transaction.
        const fresh = (await readFile(join(dir, 'mysql-bin.000002'))).subarray(0, 385);
        await writeFile(join(dir, 'mysql-bin.000003'), fresh);
        files.push({ name: 'mysql-bin.000003', size: fresh.length });
        return [];
      }
      throw new Error(`unexpected statement ${sql}`);
    },
    async end() {},
  };
  const store = () =>
    ({
      config: { prefix: 'c1/' },
      abortLeftoverUploads: async () => [],
      listKeys: async (under: string) => [...objects.keys()].filter((k) => k.startsWith(under)),
      getText: async (key: string) => objects.get(key)?.toString('utf8') ?? null,
      putText: async (key: string, body: string) => (objects.has(key) ? false : (objects.set(key, Buffer.from(body)), true)),
      uploadFile: async (key: string, path: string) => void objects.set(key, await readFile(path)),
      size: async (key: string) => objects.get(key)?.length ?? null,
      list: async () => [],
    }) as unknown as Store;
  const archiver = (nowMs: number) => new BinlogArchiver({ db, store: store(), dataDir: dir, intervalMs: INTERVAL_MS, log: pino({ level: 'silent' }), now: () => nowMs });

  it('before the interval: archives the closed file, keeps the open one, and looks again when it falls due', async () => {
    const a = archiver(firstTime * 1000 + 58_000);
    const wait = await a.tick(new AbortController().signal);
    expect(flushes).toBe(0);
    expect(wait).toBe(2_000);
    expect(a.state.files_archived).toBe(1);
    expect(a.state.lag_seconds).toBe(58);
  });

  it('at the interval: rotates, archives both, and the lag is the new empty file\'s: 0', async () => {
    const a = archiver(firstTime * 1000 + 60_000);
    const wait = await a.tick(new AbortController().signal);
    expect(flushes).toBe(1);
    expect(a.state.files_archived).toBe(2);
    expect(a.state.last_archived?.name).toBe('mysql-bin.000002');
    expect(a.state.files_waiting).toBe(0);
    expect(a.state.lag_seconds).toBe(0);
    expect(wait).toBe(5_000);
  });
});
