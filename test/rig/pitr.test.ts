/**
 * The accident undone on the rig (real MariaDB, real Ceph RGW): cluster A writes rows with the
 * server's clock beside each, takes a backup, keeps writing, DROPs the table at a known moment
 * and keeps writing elsewhere; its sidecar archives the binary logs. A new cluster B restored to
 * one second before the DROP has every row committed up to that second and none after; a replica
 * cloned from it agrees (CHECKSUM TABLE). A restore to a GTID stops at that transaction. A file
 * deleted from the archive is a gap: a point past it is refused before anything is touched, one
 * before it is planned.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Rgw, startRgw } from '../store/rgw.js';
import { newBaseDir, waitUntil } from './helpers.js';
import { Rig, type RigNode } from './rig.js';
import { listBackups, objectBytes, runStore, storeEnv } from './store-helpers.js';

let rgw: Rgw;
let a: Rig;
const rigs: Rig[] = [];
const BUCKET = 'pitr-test';
const URL = `s3://${BUCKET}/cluster-a`;
const storeVars = () => ({ BACKUP_STORE_URL: URL, ...rgw.env() });

/** Rows of A's ledger as committed: id and the server's NOW(6) in the INSERT (its binlog time, in whole seconds). */
let rows: { id: number; at: number }[] = [];
let dropSecond = 0;
/** The GTID state right after ledger row `gtidRow` committed. */
let gtidAfterRow = '';
let gtidRow = 0;
let backupGtid = '';

const iso = (s: number) => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
const gtidPos = async (n: RigNode) => ((await n.sql<{ g: string }>('SELECT @@gtid_binlog_pos AS g'))[0]!.g);

async function newRig(name: string, ip: string): Promise<Rig> {
  const rig = new Rig({ baseDir: await newBaseDir(name), ipPrefix: ip });
  rigs.push(rig);
  return rig;
}

/** Every index record in the store: key → its text. */
async function indexRecords(): Promise<Map<string, string>> {
  const s3 = rgw.client();
  try {
    const list = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'cluster-a/mysql-agent/binlogs/' }));
    const out = new Map<string, string>();
    for (const o of list.Contents ?? []) if (o.Key!.endsWith('.json')) out.set(o.Key!, (await objectBytes(rgw, BUCKET, o.Key!)).toString('utf8'));
    return out;
  } finally {
    s3.destroy();
  }
}

async function restorePlan(extra: Record<string, string>) {
  return runStore(a, ['restore-plan'], storeEnv(a, rgw, URL, extra));
}

beforeAll(async () => {
  rgw = await startRgw();
  await rgw.createBucket(BUCKET);
  a = new Rig({ baseDir: await newBaseDir('pitr-a'), ipPrefix: '127.0.6.2', agentEnv: { ...storeVars(), BINLOG_ARCHIVE_INTERVAL: '5' } });
  rigs.push(a);
  const p = a.node(0);
  await p.up();
  await p.sql('CREATE DATABASE shop');
  await p.sql('CREATE TABLE shop.ledger (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL, note VARCHAR(40))');
  await p.sql('CREATE TABLE shop.events (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL)');
  for (let i = 0; i < 20; i++) await p.sql("INSERT INTO shop.ledger (at, note) VALUES (NOW(6), 'before-backup')");
  const run = await runStore(a, ['backup'], storeEnv(a, rgw, URL));
  if (run.code !== 0) throw new Error(`backup failed: ${run.stderr}`);
  backupGtid = (await listBackups(a, storeEnv(a, rgw, URL)))[0]!.coordinates.gtid;
  // Writing for ~8 s after the backup, a row every 50 ms; the sidecar rotates every 5 s.
  const until = Date.now() + 8000;
  let n = 0;
  while (Date.now() < until) {
    await p.sql("INSERT INTO shop.ledger (at, note) VALUES (NOW(6), 'after-backup')");
    if (++n === 60) {
      gtidRow = 20 + n;
      gtidAfterRow = await gtidPos(p);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  rows = (await p.sql<{ id: number; at: string }>('SELECT id, UNIX_TIMESTAMP(at) AS at FROM shop.ledger ORDER BY id')).map((r) => ({ id: r.id, at: Number(r.at) }));
  // The accident; the rows of its second (this one among them) are after the point.
  await p.sql("INSERT INTO shop.ledger (at, note) VALUES (NOW(6), 'just-before-the-drop')");
  const [{ t }] = (await p.sql<{ t: string }>('SELECT UNIX_TIMESTAMP(NOW(6)) AS t')) as [{ t: string }];
  rows.push(...(await p.sql<{ id: number; at: string }>("SELECT id, UNIX_TIMESTAMP(at) AS at FROM shop.ledger WHERE note = 'just-before-the-drop'")).map((r) => ({ id: r.id, at: Number(r.at) })));
  dropSecond = Math.floor(Number(t));
  await p.sql('DROP TABLE shop.ledger');
  for (let i = 0; i < 30; i++) {
    await p.sql('INSERT INTO shop.events (at) VALUES (NOW(6))');
    await new Promise((r) => setTimeout(r, 50));
  }
  // Everything archived: the open file rotated by the interval.
  const end = await gtidPos(p);
  await waitUntil(async () => {
    const s = ((await (await p.http('/status')).json()) as Record<string, any>).binlog_archive;
    return s?.last_archived?.end_state === end && s.files_waiting === 0;
  }, 'the whole history archived', 30_000);
}, 300_000);

afterAll(async () => {
  for (const r of rigs.reverse()) await r.destroy();
  await rgw?.stop();
});

describe('restore to a point', () => {
  it('restore-plan names the backup, the files and the last event, one second before the DROP', async () => {
    const run = await restorePlan({ RESTORE_TO: iso(dropSecond - 1) });
    expect(run.code, run.stderr).toBe(0);
    const plan = JSON.parse(run.stdout) as Record<string, any>;
    expect(plan.backup.gtid).toBe(backupGtid);
    expect(plan.binlogs.length).toBeGreaterThanOrEqual(1);
    expect(Date.parse(plan.last_event.committed_at) / 1000).toBeLessThanOrEqual(dropSecond - 1);
    expect(plan.replay).toEqual([`--start-position=${backupGtid}`, `--stop-position=${plan.continue_from}`]);
  }, 60_000);

  it('a new cluster restored to one second before the DROP has every row committed up to then and none after; its replica agrees', async () => {
    const target = dropSecond - 1;
    const b = await newRig('pitr-b', '127.0.6.3');
    const run = await b.node(0).init({ ...storeVars(), RESTORE_FROM: 'latest', RESTORE_TO: iso(target) });
    expect(run.code, JSON.stringify(run.lines.at(-1))).toBe(0);
    expect(run.lines.filter((l) => l.msg === 'archived binary log downloaded, SHA-256 matches its index record').length).toBeGreaterThanOrEqual(1);
    const replayed = run.lines.find((l) => l.msg === 'archived binary logs applied up to the point');
    expect(replayed).toBeDefined();
    await writeFile(join(b.node(0).dir, '.root-password-set'), '');
    await b.node(0).startServer();
    // B archives into the same prefix as A: its names start again at mysql-bin.000001, under the same server_id.
    const before = await indexRecords();
    b.node(0).startSidecar({ ...storeVars(), BINLOG_ARCHIVE_INTERVAL: '5' });
    await b.node(0).waitFor('/readyz');
    const restored = (await b.node(0).sql<{ id: number }>('SELECT id FROM shop.ledger ORDER BY id')).map((r) => r.id);
    const expected = rows.filter((r) => Math.floor(r.at) <= target).map((r) => r.id);
    expect(expected.length).toBeGreaterThan(20);
    expect(rows.some((r) => Math.floor(r.at) > target)).toBe(true);
    expect(restored).toEqual(expected);
    // The history continues from the last transaction replayed.
    const status = (await (await b.node(0).http('/status')).json()) as Record<string, any>;
    expect(status.primary_recovery).toMatchObject({ decision: 'restore', continuity: { how: 'applied' } });
    expect(await gtidPos(b.node(0))).toBe(status.primary_recovery.gtid);
    // One domain here: the state continued from is the last transaction replayed.
    expect(replayed!.last_gtid).toBe(status.primary_recovery.gtid);
    await b.node(0).sql("INSERT INTO shop.events (at) VALUES (NOW(6))");
    await b.node(1).up();
    await waitUntil(async () => (await b.node(1).sql<{ g: string }>('SELECT @@gtid_slave_pos AS g'))[0]!.g === (await gtidPos(b.node(0))), 'the replica of B caught up');
    const sums = (n: RigNode) => n.sql('CHECKSUM TABLE shop.ledger, shop.events');
    expect(await sums(b.node(1))).toEqual(await sums(b.node(0)));
    // B's first file archived beside A's of the same name, none of A's rewritten.
    await waitUntil(async () => ((await (await b.node(0).http('/status')).json()) as Record<string, any>).binlog_archive?.files_archived >= 1, "B's first file archived", 30_000);
    const after = await indexRecords();
    for (const [key, text] of before) expect(after.get(key)).toBe(text);
    const bKeys = [...after.keys()].filter((k) => !before.has(k));
    expect(bKeys.some((k) => k.includes('/100/mysql-bin.000001-'))).toBe(true);
    expect([...before.keys()].some((k) => k.includes('/100/mysql-bin.000001-'))).toBe(true);
  }, 240_000);

  it('a restore to a GTID stops after that transaction', async () => {
    const c = await newRig('pitr-c', '127.0.6.4');
    const run = await c.node(0).init({ ...storeVars(), RESTORE_FROM: 'latest', RESTORE_TO_GTID: gtidAfterRow });
    expect(run.code, JSON.stringify(run.lines.at(-1))).toBe(0);
    await writeFile(join(c.node(0).dir, '.root-password-set'), '');
    await c.node(0).startServer();
    const [{ n, top }] = (await c.node(0).sql<{ n: number; top: number }>('SELECT COUNT(*) AS n, MAX(id) AS top FROM shop.ledger')) as [{ n: number; top: number }];
    expect([Number(n), top]).toEqual([gtidRow, gtidRow]);
  }, 180_000);

  it('an archived file whose bytes differ from its index record is refused before it is replayed; DATA_DIR stays empty', async () => {
    // The first of several files: read only by the replay, after the backup is restored and prepared.
    const plan = JSON.parse((await restorePlan({ RESTORE_TO: iso(dropSecond - 1) })).stdout) as Record<string, any>;
    expect(plan.binlogs.length).toBeGreaterThanOrEqual(2);
    const f = plan.binlogs[0] as { name: string; sha256: string };
    const key = `cluster-a/mysql-agent/binlogs/100/${f.name}-${f.sha256.slice(0, 16)}`;
    const good = await objectBytes(rgw, BUCKET, key);
    const bad = Buffer.from(good);
    bad[Math.floor(bad.length / 2)]! ^= 0x01;
    const s3 = rgw.client();
    try {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bad }));
      const e = await newRig('pitr-e', '127.0.6.7');
      const run = await e.node(0).init({ ...storeVars(), RESTORE_FROM: 'latest', RESTORE_TO: iso(dropSecond - 1) });
      expect(run.code).toBe(1);
      expect(String(run.lines.at(-1)!.err)).toContain(`archived binary log ${f.name} (${key}) does not match its index record`);
      expect(run.lines.some((l) => l.msg === 'clone prepared')).toBe(true);
      expect(run.lines.some((l) => l.msg === 'archived binary logs applied up to the point')).toBe(false);
      expect(await readdir(e.node(0).dataDir)).toEqual([]);
    } finally {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: good }));
      s3.destroy();
    }
  }, 120_000);

  it('a file deleted from the archive is a gap: a point past it is refused before anything is touched, one before it is planned', async () => {
    // A file after the one to be lost: else losing it only shortens the archive (a point past its end is "past the newest archived event").
    const p = a.node(0);
    await p.sql('INSERT INTO shop.events (at) VALUES (NOW(6))');
    await p.sql('FLUSH BINARY LOGS');
    const end = await gtidPos(p);
    await waitUntil(async () => ((await (await p.http('/status')).json()) as Record<string, any>).binlog_archive?.last_archived?.end_state === end, 'the later file archived');
    const plan = JSON.parse((await restorePlan({ RESTORE_TO: iso(dropSecond - 1) })).stdout) as Record<string, any>;
    expect(plan.binlogs.length).toBeGreaterThanOrEqual(2);
    const [before, lost] = plan.binlogs as { name: string; sha256: string; end: string }[];
    const key = `cluster-a/mysql-agent/binlogs/100/${lost!.name}-${lost!.sha256.slice(0, 16)}`;
    const s3 = rgw.client();
    try {
      for (const k of [key, `${key}.json`]) await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: k }));
    } finally {
      s3.destroy();
    }
    const refused = await restorePlan({ RESTORE_TO: iso(dropSecond - 1) });
    expect(refused.code).toBe(1);
    expect(String(refused.lines.at(-1)!.err)).toMatch(new RegExp(`^RESTORE_TO=${iso(dropSecond - 1)}: gap: ${before!.name} ends at ${before!.end} but `));
    const d = await newRig('pitr-d', '127.0.6.5');
    const run = await d.node(0).init({ ...storeVars(), RESTORE_FROM: 'latest', RESTORE_TO: iso(dropSecond - 1) });
    expect(run.code).toBe(1);
    expect(String(run.lines.at(-1)!.err)).toMatch(/: gap: .*DATA_DIR untouched$/);
    expect(await readdir(d.node(0).dataDir)).toEqual([]);
    const allowed = await restorePlan({ RESTORE_TO_GTID: before!.end });
    expect(allowed.code, allowed.stderr).toBe(0);
    expect((JSON.parse(allowed.stdout) as Record<string, any>).continue_from).toBe(before!.end);
  }, 120_000);

});
