/**
 * The faults of a backup to object storage, on the rig against the real store: the store
 * unreachable, killed mid-upload, refusing the credentials or missing the bucket; the sidecar's
 * backup tool killed mid-backup. After each, `backups` lists exactly the complete backups, and
 * the newest one restores with the source's checksums at backup time.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Rgw, startRgw } from '../store/rgw.js';
import { backupToolPids, newBaseDir, waitUntil } from './helpers.js';
import { Rig } from './rig.js';
import { type StoreRun, listBackups, runStore, storeEnv } from './store-helpers.js';

let rgw: Rgw;
let rig: Rig;
const BUCKET = 'fault-backups';
const URL = `s3://${BUCKET}/c1`;
const env = (extra: Record<string, string> = {}) => storeEnv(rig, rgw, URL, extra);
/** id → CHECKSUM TABLE of the source when that backup was taken. */
const checksumsAt = new Map<string, unknown>();
const checksums = () => rig.node(0).sql('CHECKSUM TABLE shop.blobs, shop.orders');
const ids = async () => (await listBackups(rig, env())).map((b) => b.id as string);
const lastError = (run: StoreRun) => String(run.lines.filter((l) => l.level === 'error').at(-1)?.err ?? '');

async function goodBackup(): Promise<string> {
  const sums = await checksums();
  const run = await runStore(rig, ['backup'], env({ BACKUP_KEEP: '20', BACKUP_SOURCE: 'primary' }));
  if (run.code !== 0) throw new Error(`backup failed: ${run.stderr}`);
  const id = run.stdout.trim();
  checksumsAt.set(id, sums);
  return id;
}

let throttledNow: boolean | null = null;
/**
 * The primary's sidecar with its backup tool throttled (a backup that lasts long enough to be
 * interrupted on purpose) or not (a backup that only has to complete: throttled, each took ~150 s).
 */
async function sidecar(throttled: boolean): Promise<void> {
  if (throttledNow === throttled) return;
  const p = rig.node(0);
  if (throttledNow !== null) await p.stopSidecar();
  p.startSidecar(throttled ? { XTRABACKUP_ARGS: `--defaults-file=${join(p.dir, 'my.cnf')} --throttle=3` } : {});
  await p.waitFor('/readyz');
  throttledNow = throttled;
}

async function unfinishedUploads(): Promise<number> {
  const s3 = rgw.client();
  try {
    return (await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads?.length ?? 0;
  } finally {
    s3.destroy();
  }
}

beforeAll(async () => {
  rgw = await startRgw();
  await rgw.createBucket(BUCKET);
  rig = new Rig({ baseDir: await newBaseDir('backup-faults'), ipPrefix: '127.0.2.4' });
  const p = rig.node(0);
  const run = await p.init();
  if (run.code !== 0) throw new Error(run.stderr);
  await p.startServer();
  await sidecar(false);
  await p.sql('CREATE DATABASE shop');
  await p.sql('CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(40))');
  await p.sql('CREATE TABLE shop.blobs (id INT PRIMARY KEY, b VARBINARY(1024))');
  for (let i = 0; i < 50; i++) await p.sql('INSERT INTO shop.orders (item) VALUES (?)', [`o-${i}`]);
  // Random bytes do not compress: ~30 MB stored, several multipart parts.
  await p.sql('INSERT INTO shop.blobs SELECT seq, RANDOM_BYTES(1024) FROM shop.seq_1_to_30000');
  await goodBackup();
}, 300_000);

afterAll(async () => {
  await rig?.destroy();
  await rgw?.stop();
});

describe('faults of a backup to object storage', () => {
  it('store unreachable at start: retried for a bounded time, then exit 1 with the reason', async () => {
    const started = Date.now();
    const run = await runStore(rig, ['backup'], env({ S3_ENDPOINT: 'http://127.0.0.1:7499' }));
    expect(run.code).toBe(1);
    expect(lastError(run)).toMatch(/^checking s3:\/\/fault-backups\/c1\/ at http:\/\/127\.0\.0\.1:7499: store unreachable at http:\/\/127\.0\.0\.1:7499 \(ECONNREFUSED\); gave up after 20 s$/);
    expect(Date.now() - started).toBeLessThan(40_000);
    expect(run.stdout).toBe('');
  }, 60_000);

  it('wrong credentials: one line naming the variable, no secret printed', async () => {
    const wrongSecret = await runStore(rig, ['backup'], env({ AWS_SECRET_ACCESS_KEY: 'definitely-not-the-secret' }));
    expect(wrongSecret.code).toBe(1);
    expect(lastError(wrongSecret)).toMatch(/^checking s3:\/\/fault-backups\/c1\/ at http:\/\/127\.0\.0\.1:7480: http:\/\/127\.0\.0\.1:7480 refused the request signature: check AWS_SECRET_ACCESS_KEY \(and the Secret it comes from\)$/);
    expect(`${wrongSecret.stdout}${wrongSecret.stderr}`).not.toContain('definitely-not-the-secret');
    const wrongKey = await runStore(rig, ['backups'], env({ AWS_ACCESS_KEY_ID: 'AKIDNOSUCHKEY' }));
    expect(wrongKey.code).toBe(1);
    expect(lastError(wrongKey)).toMatch(/does not know the access key: check AWS_ACCESS_KEY_ID/);
    expect(`${wrongKey.stdout}${wrongKey.stderr}`).not.toContain(rgw.user.secretAccessKey);
  });

  it('a missing bucket: one line naming it', async () => {
    const run = await runStore(rig, ['backup'], env({ BACKUP_STORE_URL: 's3://no-such-bucket/c1' }));
    expect(run.code).toBe(1);
    expect(lastError(run)).toContain('bucket "no-such-bucket" does not exist at http://127.0.0.1:7480: create it, or fix the bucket in BACKUP_STORE_URL');
  });

  it("the sidecar's backup tool killed mid-backup: exit 1, no manifest, nothing visible", async () => {
    await sidecar(true);
    const before = await ids();
    const running = runStore(rig, ['backup'], env({ BACKUP_SOURCE: 'primary' }));
    const [pid] = await waitUntil(() => {
      const pids = backupToolPids(rig.node(0).dataDir);
      return pids.length > 0 && pids;
    }, 'the backup tool to run');
    await new Promise((r) => setTimeout(r, 500));
    process.kill(pid!, 'SIGKILL');
    const run = await running;
    expect(run.code).toBe(1);
    expect(lastError(run)).toMatch(/reported the backup failed after \d+ bytes \(Failed: .*SIGKILL.*\)|without a status trailer/);
    expect(await ids()).toEqual(before);
    expect(await unfinishedUploads()).toBe(0);
  }, 120_000);

  it('the store killed mid-upload: exit non-zero, no manifest, nothing half-visible; the next run cleans up and succeeds', async () => {
    await sidecar(true);
    const before = await ids();
    const child = rig.spawnAgent(['backup'], env({ BACKUP_SOURCE: 'primary' }), join(rig.options.baseDir, 'killed-store.log'));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('close', r));
    await waitUntil(async () => (await unfinishedUploads()) > 0, 'a multipart upload to begin', 60_000);
    await rgw.killGateway();
    // The store comes back while the failed run still tries to release its lock.
    await waitUntil(() => stderr.includes('could not release the lock yet, retrying'), 'the failed run to retry its lock', 60_000);
    expect(backupToolPids(rig.node(0).dataDir)).toEqual([]);
    await rgw.startGateway();
    expect(await exited).toBe(1);
    const failure = stderr.split('\n').filter((l) => l.includes('"phase":"exit"')).map((l) => JSON.parse(l) as { err: string })[0]!;
    // Whichever notices first: the upload's own retries, or the lock's renewal (every 30 s), which
    // is the run's liveness check while parts wait on a store that accepts no connection.
    expect(failure.err).toMatch(
      /^(uploading c1\/mysql-agent\/backups\/\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}\/data\.xbstream\.zst|reading c1\/mysql-agent\/lock\.json): store unreachable at http:\/\/127\.0\.0\.1:7480 \(ECONNREFUSED\)$/,
    );
    await waitUntil(async () => (await runStore(rig, ['backups'], env())).code === 0, 'the store back', 60_000);
    expect(await ids()).toEqual(before);
    await sidecar(false);
    const next = await runStore(rig, ['backup'], env({ BACKUP_KEEP: '20', BACKUP_SOURCE: 'primary' }));
    expect(next.code, next.stderr).toBe(0);
    checksumsAt.set(next.stdout.trim(), await checksums());
    expect(next.lines.find((l) => l.msg === 'aborted unfinished uploads of a killed run')).toBeDefined();
    expect(await unfinishedUploads()).toBe(0);
    expect(await ids()).toEqual([next.stdout.trim(), ...before]);
  }, 300_000);

  it('SIGTERM mid-upload: exit 143, the upload aborted, no manifest, the lock released at once, the sidecar\'s tool gone', async () => {
    await sidecar(true);
    const before = await ids();
    const child = rig.spawnAgent(['backup'], env({ BACKUP_SOURCE: 'primary' }), join(rig.options.baseDir, 'sigterm.log'));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('close', r));
    // This run's own upload (the one before may have left one for the next run to abort).
    await waitUntil(() => stderr.includes('"msg":"source accepted, uploading"'), 'the run to start uploading', 60_000);
    await waitUntil(async () => (await unfinishedUploads()) > 0, 'a multipart upload to begin', 60_000);
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    expect(await unfinishedUploads()).toBe(0);
    expect(await ids()).toEqual(before);
    await waitUntil(() => backupToolPids(rig.node(0).dataDir).length === 0 && true, "the sidecar's backup tool to end", 15_000);
    // Released, not left to go stale: the next run starts at once and is not refused.
    await sidecar(false);
    const next = await runStore(rig, ['backup'], env({ BACKUP_KEEP: '20', BACKUP_SOURCE: 'primary' }));
    expect(next.code, next.stderr).toBe(0);
    expect(next.lines.find((l) => l.msg === 'took over the lock of a run that stopped renewing it')).toBeUndefined();
    checksumsAt.set(next.stdout.trim(), await checksums());
    expect(await ids()).toEqual([next.stdout.trim(), ...before]);
  }, 420_000);

  it("after all of them the newest backup restores with the source's checksums at backup time", async () => {
    const [newest] = await ids();
    const node = rig.node(5);
    const run = await node.init({ POD_NAME: 'mysql-0', BACKUP_STORE_URL: URL, ...rgw.env(), RESTORE_FROM: newest!, PEER_PROBE_COUNT: '1', PEER_HOST_TEMPLATE: '127.0.2.9{ordinal}' });
    expect(run.code, JSON.stringify(run.lines.at(-1))).toBe(0);
    expect(existsSync(join(node.dataDir, 'mysql'))).toBe(true);
    await writeFile(join(node.dir, '.root-password-set'), '');
    await node.startServer();
    expect(await node.sql('CHECKSUM TABLE shop.blobs, shop.orders')).toEqual(checksumsAt.get(newest!));
  }, 180_000);
});
