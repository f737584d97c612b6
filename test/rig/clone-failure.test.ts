/**
 * A clone either lands complete or leaves DATA_DIR as it was: the sender's backup tool killed
 * mid-stream, a wrong token, SIGTERM to init, a peer that only comes up later, and one whose
 * tool is slow to say anything. Every clone that lands is brought up and holds exactly the
 * primary's rows (CHECKSUM TABLE).
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rig, type RigNode } from './rig.js';
import { backupToolPids, createItems, expectSameChecksums, insertItems, newBaseDir, pidsMatching, waitUntil } from './helpers.js';

let rig: Rig;
let primary: RigNode;
let replica: RigNode;

beforeAll(async () => {
  rig = new Rig({ baseDir: await newBaseDir('clone-failure'), ipPrefix: '127.0.0.8' });
  primary = rig.node(0);
  replica = rig.node(1);
  await primary.up();
  await createItems(primary, 30);
});

/** The replica, started on the clone init just made, holds exactly the primary's rows (a write after the clone included); then down again. */
async function upAndCompare(): Promise<void> {
  await replica.startServer();
  replica.startSidecar();
  await replica.waitFor('/readyz');
  expect((await replica.replicaStatus())?.Slave_SQL_Running).toBe('Yes');
  await insertItems(primary, 2);
  await expectSameChecksums(primary, replica, ['app.items']);
  await replica.down();
}

afterAll(async () => {
  await rig?.destroy();
});

/** Restarts the primary's sidecar with the backup tool throttled (~3-4 MB/s) or not. */
async function restartPrimarySidecar(throttle: boolean): Promise<void> {
  await primary.stopSidecar();
  primary.startSidecar(throttle ? { XTRABACKUP_ARGS: `--defaults-file=${primary.dir}/my.cnf --throttle=50` } : {});
  await primary.waitFor('/readyz');
}

/** A backup tool that says nothing for `seconds`, then runs mariadb-backup. */
async function silentTool(seconds: number): Promise<string> {
  const path = join(rig.options.baseDir, `backup-silent-${seconds}s`);
  await writeFile(path, `#!/bin/sh\nsleep ${seconds}\nexec mariadb-backup "$@"\n`, { mode: 0o755 });
  return path;
}

async function primarySidecarWithTool(tool: string): Promise<void> {
  await primary.stopSidecar();
  primary.startSidecar({ XTRABACKUP_BIN: tool });
  await primary.waitFor('/readyz');
}

const failure = (lines: Record<string, unknown>[]) => lines.find((l) => l.phase === 'exit');

describe('init when a clone goes wrong', () => {
  it('leaves DATA_DIR as before and exits non-zero when the sender is killed mid-stream; the next run succeeds', async () => {
    await restartPrimarySidecar(true);
    const init = replica.init({ CLONE_RETRY_DEADLINE: '0' });
    await waitUntil(() => backupToolPids(primary.dataDir)[0], 'the sender backup tool', 20_000);
    await waitUntil(() => pidsMatching(`mbstream -x -C ${replica.dataDir}`).length > 0, 'the extract to run');
    await new Promise((r) => setTimeout(r, 1000));
    for (const pid of backupToolPids(primary.dataDir)) process.kill(pid, 'SIGKILL');
    const run = await init;
    expect(run.code).not.toBe(0);
    expect(String(failure(run.lines)?.err)).toMatch(/reported the backup failed .*killed by SIGKILL/);
    expect(await readdir(replica.dataDir)).toEqual([]);
    expect(pidsMatching(`mbstream -x -C ${replica.dataDir}`)).toEqual([]);

    await restartPrimarySidecar(false);
    expect((await replica.init()).code).toBe(0);
    await upAndCompare();
  });

  it('retries from scratch when the sender is killed mid-stream and retries are allowed: attempt 1 refused by its trailer, attempt 2 clones', async () => {
    await rigResetReplica();
    await restartPrimarySidecar(true);
    const init = replica.init({ CLONE_RETRY_DEADLINE: '60', CLONE_RETRY_MAX_DELAY: '1' });
    await waitUntil(() => pidsMatching(`mbstream -x -C ${replica.dataDir}`).length > 0, 'the extract to run', 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    const killed = backupToolPids(primary.dataDir);
    expect(killed.length).toBeGreaterThan(0);
    for (const pid of killed) process.kill(pid, 'SIGKILL');
    const run = await init;
    expect(run.code, String(failure(run.lines)?.err)).toBe(0);
    expect(run.lines.filter((l) => l.msg === 'clone attempt').map((l) => l.attempt)).toEqual([1, 2]);
    const retried = run.lines.filter((l) => l.msg === 'clone attempt failed, retrying');
    expect(retried).toHaveLength(1);
    expect(String(retried[0]!.err)).toMatch(/reported the backup failed .*killed by SIGKILL/);
    await restartPrimarySidecar(false);
    await upAndCompare();
  });

  it('two receivers, one donor: the second gets a real 429 and waits the Retry-After it names (30 s) before asking again, then clones', { timeout: 180_000 }, async () => {
    await rigResetReplica();
    const second = rig.node(2);
    await rm(second.dataDir, { recursive: true, force: true });
    await mkdir(second.dataDir, { recursive: true });
    // Throttled, so that the first clone holds the donor's one slot; CLONE_SOURCE=primary asks
    // no /status first (auto would skip the busy donor before ever getting its 429).
    await restartPrimarySidecar(true);
    const first = replica.init({ CLONE_SOURCE: 'primary' });
    await waitUntil(() => backupToolPids(primary.dataDir).length > 0, 'the first clone to be served', 20_000);
    const run = await second.init({ CLONE_SOURCE: 'primary', CLONE_RETRY_DEADLINE: '150', CLONE_RETRY_MAX_DELAY: '60' });
    expect((await first).code).toBe(0);
    expect(run.code, String(failure(run.lines)?.err)).toBe(0);
    const retried = run.lines.filter((l) => l.msg === 'clone attempt failed, retrying');
    expect(String(retried[0]!.err)).toMatch(/is busy serving another backup \(HTTP 429\)$/);
    // Retry-After: 30 outweighs the backoff (about 1 s for a first retry).
    expect(retried[0]!.retry_in_ms).toBe(30_000);
    const tried = run.lines.filter((l) => l.msg === 'clone attempt').map((l) => Date.parse(String(l.time)));
    expect(tried.length).toBeGreaterThanOrEqual(2);
    expect(tried[1]! - Date.parse(String(retried[0]!.time))).toBeGreaterThanOrEqual(29_900);
    await restartPrimarySidecar(false);
    await upAndCompare();
    await rm(second.dataDir, { recursive: true, force: true });
  });

  it('removes the staging directory and exits promptly on SIGTERM mid-clone, killing the stream tool', async () => {
    await rigResetReplica();
    await restartPrimarySidecar(true);
    const child = replica.spawnInit();
    await waitUntil(() => pidsMatching(`mbstream -x -C ${replica.dataDir}`).length > 0, 'the extract to run', 20_000);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const started = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    // README: exit 143 within a second.
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await readdir(replica.dataDir)).toEqual([]);
    expect(pidsMatching(`mbstream -x -C ${replica.dataDir}`)).toEqual([]);
    await waitUntil(() => backupToolPids(primary.dataDir).length === 0, 'the sender to notice', 10_000);
    await restartPrimarySidecar(false);
  });

  it('gives up at once, naming BACKUP_TOKEN, when the peer refuses the token', async () => {
    await rigResetReplica();
    const run = await replica.init({ BACKUP_TOKEN: 'not-the-cluster-token-123' });
    expect(run.code).toBe(1);
    expect(String(failure(run.lines)?.err)).toContain('BACKUP_TOKEN');
    expect(run.lines.filter((l) => l.msg === 'clone attempt')).toHaveLength(1);
    expect(await readdir(replica.dataDir)).toEqual([]);
  });

  it('waits with backoff for a peer that is not up yet, then clones', async () => {
    await rigResetReplica();
    await primary.stopSidecar();
    const init = replica.init({ CLONE_RETRY_DEADLINE: '60', CLONE_RETRY_MAX_DELAY: '1' });
    await new Promise((r) => setTimeout(r, 2500));
    primary.startSidecar();
    const run = await init;
    expect(run.code).toBe(0);
    expect(run.lines.filter((l) => l.msg === 'clone attempt failed, retrying').length).toBeGreaterThan(0);
    expect(run.lines.find((l) => l.msg === 'clone attempt failed, retrying')?.err).toContain('ECONNREFUSED');
    expect(await readdir(replica.dataDir)).toContain('mysql');
    await upAndCompare();
  });

  it('exits non-zero with the reason once the retry deadline has passed', async () => {
    const lonely = rig.node(3); // its peer, ordinal 2, never comes up (auto would take the primary)
    const started = Date.now();
    const run = await lonely.init({ CLONE_RETRY_DEADLINE: '3', CLONE_RETRY_MAX_DELAY: '1', CLONE_SOURCE: 'previous' });
    expect(run.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(String(failure(run.lines)?.err)).toMatch(/gave up after \d+ attempt\(s\).*ECONNREFUSED/);
    expect(await readdir(lonely.dataDir)).toEqual([]);
  });
  // Real tools are silent that long while they take --lock-ddl behind a long ALTER, checkpoint,
  // or open hundreds of thousands of tablespaces.
  it('clones from a peer whose backup tool is silent for 12 s before its first byte', { timeout: 60_000 }, async () => {
    await rigResetReplica();
    await primarySidecarWithTool(await silentTool(12));
    try {
      const started = Date.now();
      const run = await replica.init({ CLONE_RETRY_DEADLINE: '0' });
      expect(run.code, String(failure(run.lines)?.err)).toBe(0);
      expect(Date.now() - started).toBeGreaterThan(12_000);
      expect(await readdir(replica.dataDir)).toContain('mysql');
      expect(run.lines.filter((l) => l.msg === 'clone attempt')).toHaveLength(1);
    } finally {
      await restartPrimarySidecar(false);
    }
    await upAndCompare();
  });

  it('gives up on a peer that sends no byte within CLONE_FIRST_BYTE_TIMEOUT, naming the setting', { timeout: 60_000 }, async () => {
    await rigResetReplica();
    await primarySidecarWithTool(await silentTool(12));
    try {
      const started = Date.now();
      const run = await replica.init({ CLONE_RETRY_DEADLINE: '0', CLONE_FIRST_BYTE_TIMEOUT: '3' });
      expect(run.code).toBe(1);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(String(failure(run.lines)?.err)).toMatch(/sent no byte of the backup within 3 s .*CLONE_FIRST_BYTE_TIMEOUT/);
      expect(await readdir(replica.dataDir)).toEqual([]);
    } finally {
      await restartPrimarySidecar(false);
    }
  });

  // mbstream stops at a file that exists, prints "File exists" and exits 0: at the first file
  // the pipe breaks; at the last one the whole stream may already have been read.
  it.each(['aria_log_control', 'xtrabackup_info'])(
    'refuses a clone when the stream tool reports an error but exits 0 (mbstream "File exists" on %s)',
    async (existing) => {
      await rigResetReplica();
      const wrapper = join(rig.options.baseDir, `mbstream-file-exists-${existing}`);
      await writeFile(wrapper, `#!/bin/sh\ntouch "$3/${existing}"\nexec mbstream "$@"\n`, { mode: 0o755 });
      const run = await replica.init({ XBSTREAM_BIN: wrapper, CLONE_RETRY_DEADLINE: '0' });
      expect(run.code).toBe(1);
      expect(String(failure(run.lines)?.err)).toContain('File exists');
      expect(await readdir(replica.dataDir)).toEqual([]);
    },
  );
});

async function rigResetReplica(): Promise<void> {
  await rm(replica.dataDir, { recursive: true, force: true });
  await mkdir(replica.dataDir, { recursive: true });
}
