/**
 * The primary's sidecar archiving its binary logs to real Ceph RGW: each closed file is in the
 * store byte for byte with an index record matching the agent's own summary of the file; an open
 * file older than BINLOG_ARCHIVE_INTERVAL is rotated and archived; a sidecar SIGKILLed mid-upload
 * finishes on its next start with one object per file; the store down for a while is caught up;
 * a file purged before it was archived is reported as a gap (/status, /metrics, an error line).
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarizeBinlog } from '../../agent/mysql/binlog.js';
import { parseIndexRecord } from '../../agent/store/binlog-archive.js';
import { type Rgw, startRgw } from '../store/rgw.js';
import { newBaseDir, waitUntil } from './helpers.js';
import { Rig, type RigNode } from './rig.js';
import { objectBytes, sha256 } from './store-helpers.js';

let rgw: Rgw;
let rig: Rig;
let p: RigNode;
const BUCKET = 'archive-test';
const PREFIX = 'cluster-a/';
const BINLOGS = `${PREFIX}mysql-agent/binlogs/`;
const INTERVAL = 5;

async function keys(under = BINLOGS): Promise<string[]> {
  const s3 = rgw.client();
  try {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: under, ContinuationToken: token }));
      for (const o of page.Contents ?? []) out.push(o.Key!);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  } finally {
    s3.destroy();
  }
}

async function unfinishedUploads(): Promise<string[]> {
  const s3 = rgw.client();
  try {
    return ((await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: BINLOGS }))).Uploads ?? []).map((u) => u.Key!);
  } finally {
    s3.destroy();
  }
}

const binlogs = async () => (await p.sql<{ Log_name: string; File_size: number }>('SHOW BINARY LOGS')).map((r) => r.Log_name);
const indexOf = async (name: string) => (await keys()).filter((k) => k.includes(`/${name}-`) && k.endsWith('.json'));
const archivedAll = async (names: string[]) => {
  const all = await keys();
  return names.every((n) => all.some((k) => k.includes(`/${n}-`) && k.endsWith('.json')));
};
const status = async () => ((await (await p.http('/status')).json()) as Record<string, any>).binlog_archive;
const metric = async (name: string) => {
  const m = new RegExp(`^mysql_agent_${name} (\\S+)$`, 'm').exec(await (await p.http('/metrics')).text());
  return m ? Number(m[1]) : null;
};

beforeAll(async () => {
  rgw = await startRgw();
  await rgw.createBucket(BUCKET);
  rig = new Rig({
    baseDir: await newBaseDir('archive'),
    ipPrefix: '127.0.6.1',
    agentEnv: { BACKUP_STORE_URL: `s3://${BUCKET}/${PREFIX}`, ...rgw.env(), BINLOG_ARCHIVE_INTERVAL: String(INTERVAL) },
  });
  p = rig.node(0);
  await p.up();
  await p.sql('CREATE DATABASE shop');
  await p.sql('CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(40), at DATETIME(6), pad LONGTEXT)');
}, 120_000);

afterAll(async () => {
  await rig?.destroy();
  await rgw?.stop();
});

describe('binary log archiving', () => {
  it('puts each closed file in the store byte for byte, its index record written from the same summary', async () => {
    for (let i = 0; i < 50; i++) await p.sql('INSERT INTO shop.orders (item, at) VALUES (?, NOW(6))', [`o-${i}`]);
    const closed = (await binlogs()).at(-1)!;
    await p.sql('FLUSH BINARY LOGS');
    await waitUntil(() => archivedAll([closed]), `${closed} archived`, 30_000);
    const [indexKey] = await indexOf(closed);
    const record = parseIndexRecord((await objectBytes(rgw, BUCKET, indexKey!)).toString('utf8'), indexKey!);
    const local = await summarizeBinlog(closed, createReadStream(join(p.dataDir, closed)));
    expect(record).toEqual({ format: 1, key: indexKey!.replace(/\.json$/, ''), archived_at: record.archived_at, ...local });
    expect(record.transactions).toBeGreaterThanOrEqual(52);
    expect(record.closedAt).not.toBeNull();
    expect(sha256(await objectBytes(rgw, BUCKET, record.key))).toBe(sha256(await readFile(join(p.dataDir, closed))));
    expect(record.key).toBe(`${BINLOGS}100/${closed}-${local.sha256.slice(0, 16)}`);
  }, 60_000);

  it('rotates an open file whose oldest transaction is BINLOG_ARCHIVE_INTERVAL old and archives it; the lag stays under the interval + 10 s', async () => {
    const open = (await binlogs()).at(-1)!;
    await p.sql("INSERT INTO shop.orders (item, at) VALUES ('rotate-me', NOW(6))");
    const written = Date.now();
    await waitUntil(() => archivedAll([open]), `${open} rotated and archived`, (INTERVAL + 15) * 1000);
    const took = (Date.now() - written) / 1000;
    expect(took).toBeGreaterThanOrEqual(INTERVAL - 1);
    expect(took).toBeLessThan(INTERVAL + 10);
    expect(p.sidecarLines().some((l) => l.msg === 'rotated the binary log: its oldest event reached BINLOG_ARCHIVE_INTERVAL' && l.file === open)).toBe(true);
    await waitUntil(async () => (await status())?.files_waiting === 0, 'nothing waiting');
    expect(await metric('binlog_archive_lag_seconds')).toBeLessThan(INTERVAL + 10);
    expect(await metric('binlog_archive_bytes')).toBeGreaterThan(0);
    expect(await metric('binlog_archive_gaps')).toBe(0);
  }, 60_000);

  it('a sidecar SIGKILLed mid-upload finishes the file on its next start: one object and one index for it, the same bytes', async () => {
    // Over one multipart part (8 MiB), so the upload is visible while it runs.
    for (let i = 0; i < 6; i++) await p.sql("INSERT INTO shop.orders (item, at, pad) VALUES ('big', NOW(6), REPEAT(MD5(RAND()), 100000))");
    const big = (await binlogs()).at(-1)!;
    await p.sql('FLUSH BINARY LOGS');
    await waitUntil(async () => (await unfinishedUploads()).some((k) => k.includes(`/${big}-`)), `the upload of ${big} under way`, 20_000);
    await p.stopSidecar('SIGKILL');
    expect(await indexOf(big)).toEqual([]);
    p.startSidecar();
    await waitUntil(() => archivedAll([big]), `${big} archived after the restart`, 60_000);
    const all = (await keys()).filter((k) => k.includes(`/${big}-`));
    expect(all).toHaveLength(2);
    expect(await unfinishedUploads()).toEqual([]);
    expect(p.sidecarLines().find((l) => l.msg === 'aborted unfinished binary log uploads of an earlier run')?.keys).toEqual([all.find((k) => !k.endsWith('.json'))]);
    const record = parseIndexRecord((await objectBytes(rgw, BUCKET, all.find((k) => k.endsWith('.json'))!)).toString('utf8'), 'index');
    expect(sha256(await objectBytes(rgw, BUCKET, record.key))).toBe(sha256(await readFile(join(p.dataDir, big))));
    expect(record.size).toBeGreaterThan(8 * 1024 * 1024);
  }, 120_000);

  it('the store down for a while: archiving says so, then catches up with every file when it returns', async () => {
    await rgw.killGateway();
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      await p.sql("INSERT INTO shop.orders (item, at) VALUES ('while-down', NOW(6))");
      names.push((await binlogs()).at(-1)!);
      await p.sql('FLUSH BINARY LOGS');
    }
    await waitUntil(async () => ((await status())?.last_error ?? null) !== null, 'the failure in /status', 60_000);
    const down = await status();
    expect(down.last_error).toMatch(/store unreachable/);
    expect(await metric('binlog_archive_files_waiting')).toBeGreaterThanOrEqual(1);
    expect(p.sidecarLines().filter((l) => l.msg === 'binary log archiving failed, retrying').length).toBe(1);
    await rgw.startGateway();
    await waitUntil(() => archivedAll(names), 'every file archived once the store is back', 60_000);
    await waitUntil(async () => (await status())?.last_error === null, 'the failure cleared');
    expect((await status()).gaps).toEqual([]);
  }, 180_000);

  it('a file purged before it was archived is a gap: /status, /metrics and an error line name it', async () => {
    await p.stopSidecar();
    await p.sql("INSERT INTO shop.orders (item, at) VALUES ('purged-unarchived', NOW(6))");
    const lost = (await binlogs()).at(-1)!;
    await p.sql('FLUSH BINARY LOGS');
    const oldest = (await binlogs()).at(-1)!;
    const [{ s }] = (await p.sql<{ s: string }>('SELECT @@gtid_binlog_pos AS s')) as [{ s: string }];
    // A file is purged only once its transactions are past the binlog checkpoint: one more commit
    // moves it, in the background (CI once purged nothing at the first try), so PURGE until it does.
    await p.sql("INSERT INTO shop.orders (item, at) VALUES ('after-the-flush', NOW(6))");
    await waitUntil(async () => {
      await p.sql(`PURGE BINARY LOGS TO '${oldest}'`);
      return (await binlogs())[0] === oldest;
    }, `PURGE BINARY LOGS TO '${oldest}' to purge the older files`, 10_000);
    p.startSidecar();
    await waitUntil(async () => (await status())?.gaps?.length === 1, 'the gap in /status', 30_000);
    expect((await status()).gaps[0]).toMatchObject({ before: oldest, startState: s });
    expect(await metric('binlog_archive_gaps')).toBe(1);
    const line = p.sidecarLines().find((l) => l.level === 'error' && String(l.msg).startsWith(`binary logs before ${oldest} were purged before they were archived`));
    expect(line).toMatchObject({ phase: 'archive', before: oldest, gtid: s });
    expect(await indexOf(lost)).toEqual([]);
  }, 60_000);

  it('archiving 100 MB of binary log in 1 MB rows raises the sidecar\'s peak RSS by at most 24 MB (one part buffer, the reads collected)', async () => {
    // A fresh sidecar, settled: its peak before is its start, not an earlier test's upload.
    await p.stopSidecar();
    p.startSidecar();
    await waitUntil(async () => (await status())?.files_waiting === 0 && (await status())?.lag_seconds !== null, 'the new sidecar archiving', 30_000);
    const kb = async (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(await readFile(`/proc/${p.sidecar!.pid}/status`, 'utf8'))![1]) / 1024;
    const before = await kb('VmHWM');
    const bytesBefore = (await status()).bytes_archived;
    // Rotated every INTERVAL while it is written: several files of tens of MB.
    for (let i = 0; i < 100; i++) await p.sql("INSERT INTO shop.orders (item, at, pad) VALUES ('mb', NOW(6), REPEAT(MD5(RAND()), 32768))");
    await p.sql('FLUSH BINARY LOGS');
    const [{ g }] = (await p.sql<{ g: string }>('SELECT @@gtid_binlog_pos AS g')) as [{ g: string }];
    await waitUntil(async () => (await status())?.last_archived?.end_state === g, 'everything archived', 120_000);
    const peak = await kb('VmHWM');
    expect((await status()).bytes_archived - bytesBefore).toBeGreaterThan(100 * 1024 * 1024);
    // The budget: one 8 MiB part, 4 MiB of chunks between young collections, 8 MiB of promoted ones
    // before a full collection (stream/meter.ts), a few MB of heap. Before: +77 MB.
    expect(peak - before, `peak RSS ${peak.toFixed(1)} MB against ${before.toFixed(1)} MB before`).toBeLessThanOrEqual(24);
  }, 180_000);
});
