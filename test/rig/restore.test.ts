/**
 * Restoring a cluster from the object store on the rig: a backup of cluster A restored into
 * ordinal 0 of a new cluster B (RESTORE_FROM) has A's checksums at backup time and continues its
 * GTID history, so B's replicas follow; a flipped byte or a truncated object is refused before
 * prepare with DATA_DIR untouched; a missing id is refused naming the ids there are.
 */
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Rgw, startRgw } from '../store/rgw.js';
import { newBaseDir, pidsMatching, waitUntil } from './helpers.js';
import { Rig, type RigNode } from './rig.js';
import { listBackups, objectBytes, runStore, storeEnv } from './store-helpers.js';

let rgw: Rgw;
let a: Rig;
let b: Rig;
const BUCKET = 'restore-test';
const URL = `s3://${BUCKET}/cluster-a`;
let backup: Record<string, any>;
let checksumsAtBackup: Record<string, unknown>[];

const checksums = (node: RigNode) => node.sql('CHECKSUM TABLE shop.orders, shop.items');
/** The pod environment of cluster B's nodes, with the store. */
const restoreEnv = (extra: Record<string, string> = {}) => ({ BACKUP_STORE_URL: URL, ...rgw.env(), ...extra });

async function putObject(key: string, body: Buffer): Promise<void> {
  const s3 = rgw.client();
  try {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  } finally {
    s3.destroy();
  }
}

beforeAll(async () => {
  rgw = await startRgw();
  await rgw.createBucket(BUCKET);
  a = new Rig({ baseDir: await newBaseDir('restore-a'), ipPrefix: '127.0.2.2' });
  await a.node(0).up();
  const p = a.node(0);
  await p.sql('CREATE DATABASE shop');
  await p.sql('CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(40), KEY (item))');
  await p.sql('CREATE TABLE shop.items (sku INT PRIMARY KEY, name TEXT)');
  for (let i = 0; i < 200; i++) await p.sql('INSERT INTO shop.orders (item) VALUES (?)', [`o-${i}`]);
  await p.sql("INSERT INTO shop.items SELECT seq, REPEAT('x', seq % 300) FROM shop.seq_1_to_2000");
  await a.node(1).up();
  await waitUntil(async () => (await a.node(1).sql<{ n: number }>('SELECT COUNT(*) AS n FROM shop.items'))[0]!.n === 2000, 'replica caught up');
  checksumsAtBackup = await checksums(a.node(0));
  const run = await runStore(a, ['backup'], storeEnv(a, rgw, URL));
  if (run.code !== 0) throw new Error(`backup failed: ${run.stderr}`);
  [backup] = await listBackups(a, storeEnv(a, rgw, URL));
  // Written after the backup: a restore must not have it.
  await p.sql("INSERT INTO shop.orders (item) VALUES ('after-the-backup')");
  b = new Rig({ baseDir: await newBaseDir('restore-b'), ipPrefix: '127.0.2.3' });
}, 300_000);

afterAll(async () => {
  await b?.destroy();
  await a?.destroy();
  await rgw?.stop();
});

describe('RESTORE_FROM at ordinal 0 of a new cluster', () => {
  it('refuses an id that is not there, naming the ones that are; DATA_DIR stays empty', async () => {
    const run = await b.node(0).init(restoreEnv({ RESTORE_FROM: '20200101T000000Z-000000' }));
    expect(run.code).toBe(1);
    const last = run.lines.at(-1)!;
    expect(String(last.err)).toBe(
      `RESTORE_FROM=20200101T000000Z-000000 names no complete backup in s3://${BUCKET}/cluster-a/ at ${rgw.endpoint}; the complete ones, newest first: ${backup.id}`,
    );
    expect(await readdir(b.node(0).dataDir)).toEqual([]);
  });

  for (const [fault, spoil] of [
    ['a flipped byte', (x: Buffer) => Buffer.concat([x.subarray(0, 5000), Buffer.from([x[5000]! ^ 0x10]), x.subarray(5001)])],
    ['a truncated object', (x: Buffer) => x.subarray(0, Math.floor(x.length * 0.6))],
  ] as const) {
    it(`refuses ${fault} before prepare; DATA_DIR stays empty`, async () => {
      const good = await objectBytes(rgw, BUCKET, backup.data.key);
      await putObject(backup.data.key, spoil(good));
      try {
        const run = await b.node(0).init(restoreEnv({ RESTORE_FROM: 'latest' }));
        expect(run.code).toBe(1);
        expect(String(run.lines.at(-1)!.err)).toMatch(new RegExp(`^backup ${backup.id} \\(.*\\): .*refusing to prepare it, DATA_DIR untouched$`));
        expect(String(run.lines.at(-1)!.err)).toMatch(/corrupt or truncated|does not match its manifest/);
        expect(run.lines.some((l) => l.phase === 'prepare')).toBe(false);
        expect(await readdir(b.node(0).dataDir)).toEqual([]);
      } finally {
        await putObject(backup.data.key, good);
      }
    }, 60_000);
  }

  it("restores the backup: the source's checksums at backup time, nothing written after it", async () => {
    const run = await b.node(0).init(restoreEnv({ RESTORE_FROM: 'latest' }));
    expect(run.code, JSON.stringify(run.lines.at(-1))).toBe(0);
    expect(run.lines.find((l) => l.msg === 'backup downloaded, SHA-256 matches the manifest')?.sha256).toBe(backup.data.sha256);
    expect(existsSync(join(b.node(0).dataDir, 'mysql'))).toBe(true);
    // The restored accounts carry cluster A's root password.
    await writeFile(join(b.node(0).dir, '.root-password-set'), '');
    await b.node(0).startServer();
    b.node(0).startSidecar();
    await b.node(0).waitFor('/readyz');
    expect(await checksums(b.node(0))).toEqual(checksumsAtBackup);
    const [{ n }] = (await b.node(0).sql<{ n: number }>("SELECT COUNT(*) AS n FROM shop.orders WHERE item = 'after-the-backup'")) as [{ n: number }];
    expect(Number(n)).toBe(0);
  }, 120_000);

  it("continues the backup's GTID history, and a replica of the restored primary follows it", async () => {
    const [{ s }] = (await b.node(0).sql<{ s: string }>('SELECT @@gtid_binlog_state AS s')) as [{ s: string }];
    expect(s).toBe(backup.coordinates.gtid);
    const status = (await (await b.node(0).http('/status')).json()) as Record<string, any>;
    expect(status.primary_recovery).toMatchObject({ decision: 'restore', gtid: backup.coordinates.gtid, continuity: { how: 'applied' } });
    await b.node(0).sql("INSERT INTO shop.orders (item) VALUES ('after-the-restore')");
    const [domain, server, seq] = String(backup.coordinates.gtid).split('-').map(Number) as [number, number, number];
    const [{ p }] = (await b.node(0).sql<{ p: string }>('SELECT @@gtid_binlog_pos AS p')) as [{ p: string }];
    expect(p).toBe(`${domain}-${server}-${seq + 1}`);
    await b.node(1).up();
    await waitUntil(async () => (await b.node(1).sql<{ n: number }>("SELECT COUNT(*) AS n FROM shop.orders WHERE item = 'after-the-restore'"))[0]!.n === 1, 'replica of B follows');
    expect(await checksums(b.node(1))).toEqual(await checksums(b.node(0)));
  }, 120_000);
});

describe('CLONE_SOURCE=backup on a replica', () => {
  const served = async (node: RigNode) => {
    const text = await (await node.http('/metrics')).text();
    return Number(/^mysql_agent_backups_served_total (\d+)/m.exec(text)?.[1] ?? 'NaN');
  };

  it('seeds from the newest backup without calling any peer for /backup, then replicates from its GTID', async () => {
    const before = [await served(a.node(0)), await served(a.node(1))];
    const node = a.node(2);
    const run = await node.init(restoreEnv({ CLONE_SOURCE: 'backup' }));
    expect(run.code, JSON.stringify(run.lines.at(-1))).toBe(0);
    expect(run.lines.find((l) => l.msg === 'backup restored into the datadir')).toMatchObject({ backup_id: backup.id, choice: 'backup' });
    expect([await served(a.node(0)), await served(a.node(1))]).toEqual(before);
    await node.startServer();
    node.startSidecar();
    await node.waitFor('/readyz');
    // Written on the primary after the backup: it arrives by replication from the backup's GTID.
    await waitUntil(async () => (await node.sql<{ n: number }>("SELECT COUNT(*) AS n FROM shop.orders WHERE item = 'after-the-backup'"))[0]!.n === 1, 'the row written after the backup');
    expect((await node.replicaStatus())?.Using_Gtid).toBe('Slave_Pos');
    expect(await checksums(node)).toEqual(await checksums(a.node(0)));
  }, 120_000);

  it('falls back to a peer clone, saying why, when the primary no longer has the binary logs from the backup', async () => {
    const p = a.node(0);
    await p.sql('FLUSH BINARY LOGS');
    await p.sql("INSERT INTO shop.orders (item) VALUES ('after-the-purge')");
    const [{ Log_name: newest }] = (await p.sql<{ Log_name: string }>('SHOW BINARY LOGS')).slice(-1) as [{ Log_name: string }];
    await p.sql(`PURGE BINARY LOGS TO '${newest}'`);
    const node = a.node(3);
    const run = await node.init(restoreEnv({ CLONE_SOURCE: 'backup' }));
    expect(run.code, JSON.stringify(run.lines.at(-1))).toBe(0);
    const fallback = run.lines.find((l) => String(l.msg).startsWith('CLONE_SOURCE=backup: cloning from a peer instead'));
    expect(String(fallback?.reason)).toMatch(new RegExp(`^the primary no longer has the binary logs from the newest backup's GTID ${backup.coordinates.gtid} \\(its oldest binary log begins after 0-100-\\d+\\)`));
    expect(run.lines.some((l) => l.msg === 'clone accepted into the datadir')).toBe(true);
    await node.startServer();
    node.startSidecar();
    await node.waitFor('/readyz');
    await waitUntil(async () => (await node.sql<{ n: number }>("SELECT COUNT(*) AS n FROM shop.orders WHERE item = 'after-the-purge'"))[0]!.n === 1, 'the row written after the purge');
    expect(await checksums(node)).toEqual(await checksums(p));
  }, 120_000);
});

describe('verify-backup, the restore drill', () => {
  let drillDir = '';
  const drillEnv = (extra: Record<string, string> = {}) => storeEnv(a, rgw, URL, { DRILL_DIR: drillDir, ...extra });
  beforeAll(async () => {
    drillDir = await newBaseDir('drill');
  });

  it('passes on a good backup: every table checked and counted, verdict beside the manifest, nothing left behind', async () => {
    const run = await runStore(a, ['verify-backup'], drillEnv());
    expect(run.code, run.stderr).toBe(0);
    expect(run.lines.find((l) => l.msg === 'throwaway server answers on loopback')).toBeDefined();
    const [listed] = await listBackups(a, drillEnv());
    expect(listed!.drill).toMatchObject({ id: backup.id, ok: true, failure: null });
    expect(listed!.drill.tables['shop.orders']).toBe(200);
    expect(listed!.drill.tables['shop.items']).toBe(2000);
    expect(listed!.drill.tables_checked).toBeGreaterThan(2);
    expect(await readdir(drillDir)).toEqual([]);
    expect(pidsMatching(`${drillDir}/mysql-agent-drill-`)).toEqual([]);
  }, 120_000);

  it('fails on a corrupted one before prepare, with the reason in the verdict; nothing left behind', async () => {
    const good = await objectBytes(rgw, BUCKET, backup.data.key);
    const bad = Buffer.from(good);
    bad[Math.floor(bad.length / 2)]! ^= 0x01;
    await putObject(backup.data.key, bad);
    try {
      const run = await runStore(a, ['verify-backup', '--backup-id', backup.id], drillEnv());
      expect(run.code).toBe(1);
      expect(run.lines.some((l) => l.phase === 'prepare' || l.msg === 'throwaway server answers on loopback')).toBe(false);
      const [listed] = await listBackups(a, drillEnv());
      expect(listed!.drill).toMatchObject({ id: backup.id, ok: false, tables_checked: 0 });
      expect(listed!.drill.failure).toMatch(/corrupt or truncated|does not match its manifest/);
      expect(await readdir(drillDir)).toEqual([]);
      const table = await runStore(a, ['backups'], drillEnv());
      expect(table.stdout).toMatch(/FAILED \d{4}-\d\d-\d\dT/);
    } finally {
      await putObject(backup.data.key, good);
    }
  }, 120_000);
});
