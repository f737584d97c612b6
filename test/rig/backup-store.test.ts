/**
 * `mysql-agent backup` and `backups` on the rig (real mariadbd nodes and agents) against the
 * real test store (Ceph RGW): the source chosen by the clone's ranking, the stored object's
 * SHA-256 and coordinates in the manifest, BACKUP_KEEP, and two runs at once.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Rgw, startRgw } from '../store/rgw.js';
import { newBaseDir } from './helpers.js';
import { Rig } from './rig.js';
import { listBackups, objectBytes, runStore, sha256, storeEnv } from './store-helpers.js';

let rig: Rig;
let rgw: Rgw;
const BUCKET = 'rig-backups';
const URL = `s3://${BUCKET}/cluster-a`;
const env = (extra: Record<string, string> = {}) => storeEnv(rig, rgw, URL, extra);

beforeAll(async () => {
  rgw = await startRgw();
  await rgw.createBucket(BUCKET);
  rig = new Rig({ baseDir: await newBaseDir('backup-store'), ipPrefix: '127.0.2.1' });
  const primary = rig.node(0);
  await primary.up();
  await primary.sql('CREATE DATABASE shop');
  await primary.sql('CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(40), KEY (item))');
  for (let i = 0; i < 50; i++) await primary.sql('INSERT INTO shop.orders (item) VALUES (?)', [`item-${i}`]);
  await rig.node(1).up();
}, 240_000);

afterAll(async () => {
  await rig?.destroy();
  await rgw?.stop();
});

describe('mysql-agent backup', () => {
  let id = '';
  it('backs up the caught-up replica, prints the id and exits 0 once the manifest is written', async () => {
    const run = await runStore(rig, ['backup'], env());
    expect(run.code, run.stderr).toBe(0);
    id = run.stdout.trim();
    expect(id).toMatch(/^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}$/);
    const done = run.lines.find((l) => l.phase === 'done')!;
    expect(done.peer).toBe('127.0.2.11');
    // The sidecar has zstd: it compressed, and the stream was stored as it came.
    expect(run.lines.find((l) => l.msg === 'source accepted, uploading')).toMatchObject({ compressed_by: 'source' });
    expect(JSON.stringify(run.stderr)).not.toContain(rgw.user.secretAccessKey);
    expect(JSON.stringify(run.stderr)).not.toContain(rig.token);
  }, 120_000);

  it('lists it with source, server, sizes, SHA-256 of the stored object and the GTID the replica was at', async () => {
    const [b, ...more] = await listBackups(rig, env());
    expect(more).toEqual([]);
    expect(b!.id).toBe(id);
    expect(b!.source).toMatchObject({ host: '127.0.2.11', ordinal: 1, role: 'replica', choice: 'auto' });
    expect(b!.server.flavor).toBe('mariadb');
    expect(b!.server.version).toMatch(/^10\.11\./);
    const [pos] = await rig.node(1).sql<{ g: string }>('SELECT @@gtid_slave_pos AS g');
    expect(b!.coordinates).toMatchObject({ from: 'slave_info', gtid: pos!.g });
    expect(b!.drill).toBeNull();
    const stored = await objectBytes(rgw, BUCKET, b!.data.key);
    expect(b!.data.key).toBe(`cluster-a/mysql-agent/backups/${id}/data.xbstream.zst`);
    expect(stored.length).toBe(b!.data.stored_bytes);
    expect(sha256(stored)).toBe(b!.data.sha256);
    const raw = zstdDecompressSync(stored);
    expect(raw.length).toBe(b!.data.raw_bytes);
    expect(b!.data.stored_bytes).toBeLessThan(b!.data.raw_bytes);
    // What the sidecar served: the tool's bytes (zstd's count) and the compressed ones it relayed.
    expect(rig.node(1).sidecarLines().filter((l) => l.msg === 'backup served').at(-1)).toMatchObject({ bytes: b!.data.raw_bytes, wire_bytes: b!.data.stored_bytes });
    // The stored stream is a whole backup: mbstream extracts the table and the closing files.
    const dir = await mkdtemp(join(tmpdir(), 'backup-extract-'));
    await writeFile(join(dir, 's.xbstream'), raw);
    execFileSync('sh', ['-c', 'mkdir x && mbstream -x -C x < s.xbstream'], { cwd: dir });
    expect(await readdir(join(dir, 'x', 'shop'))).toContain('orders.ibd');
    expect(await readdir(join(dir, 'x'))).toEqual(expect.arrayContaining(['backup-my.cnf', 'xtrabackup_info', 'xtrabackup_checkpoints', 'xtrabackup_slave_info']));
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('prints a table for people', async () => {
    const run = await runStore(rig, ['backups'], env());
    expect(run.code).toBe(0);
    const [header, row] = run.stdout.split('\n');
    expect(header).toMatch(/^ID\s+FINISHED\s+SOURCE\s+SERVER\s+RAW\s+STORED\s+SHA-256\s+BINLOG\s+GTID\s+DRILL$/);
    expect(row).toContain(id);
    expect(row).toMatch(/mysql-1 \(127\.0\.2\.11\)\s+mariadb 10\.11\..*\s+never$/);
  });

  it('BACKUP_SOURCE=primary backs up ordinal 0, with its binlog position', async () => {
    const run = await runStore(rig, ['backup'], env({ BACKUP_SOURCE: 'primary' }));
    expect(run.code, run.stderr).toBe(0);
    const [b] = await listBackups(rig, env());
    expect(b!.id).toBe(run.stdout.trim());
    expect(b!.source).toMatchObject({ host: '127.0.2.10', ordinal: 0, role: 'primary', choice: 'primary' });
    expect(b!.coordinates.from).toBe('binlog_info');
    expect(b!.coordinates.binlog_file).toMatch(/^mysql-bin\.\d+$/);
    expect(b!.coordinates.binlog_pos).toBeGreaterThan(4);
  }, 120_000);

  it('keeps BACKUP_KEEP complete backups: the oldest go, the newest stays', async () => {
    const before = (await listBackups(rig, env())).map((b) => b.id);
    expect(before).toHaveLength(2);
    const run = await runStore(rig, ['backup'], env({ BACKUP_KEEP: '2' }));
    expect(run.code, run.stderr).toBe(0);
    const after = (await listBackups(rig, env())).map((b) => b.id);
    expect(after).toEqual([run.stdout.trim(), before[0]]);
    expect(run.lines.filter((l) => l.msg === 'deleted a backup beyond BACKUP_KEEP').map((l) => l.backup_id)).toEqual([before[1]]);
  }, 120_000);

  it('two runs at once: one backup, the other refused naming the holder, nothing written by it', async () => {
    const before = (await listBackups(rig, env())).map((b) => b.id);
    const [a, b] = await Promise.all([runStore(rig, ['backup'], env({ BACKUP_KEEP: '10' })), runStore(rig, ['backup'], env({ BACKUP_KEEP: '10' }))]);
    const ok = [a, b].filter((r) => r.code === 0);
    const refused = [a, b].filter((r) => r.code !== 0);
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.code).toBe(1);
    expect(refused[0]!.stdout).toBe('');
    expect(refused[0]!.stderr).toMatch(/another backup run holds the store's lock \(backup \d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6} from .*\): refusing to start a second one/);
    expect((await listBackups(rig, env())).map((x) => x.id)).toEqual([ok[0]!.stdout.trim(), ...before]);
  }, 120_000);
});
