/**
 * Faults and abuse on real servers: a volume too small, or filling up mid-stream, after the
 * stream or in prepare, init SIGKILLed
 * mid-extract, a peer whose name does not resolve yet, a wrong or rotated replication password, a client
 * that stops reading, a bit flipped in flight, and a flood of bad tokens. After each fault
 * clears, the replica holds exactly the primary's rows.
 */
import { appendFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { type Server, request } from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { prepareMargin } from '../../agent/stream/sizes.js';
import { CREDENTIALS, Rig, type RigNode } from './rig.js';
import {
  backupToolPids,
  expectSameChecksums,
  mountTmpfs,
  newBaseDir,
  pidsMatching,
  startBitFlipProxy,
  unmount,
  waitForReason,
  waitUntil,
} from './helpers.js';

// Real clones under a loaded machine: generous per-test time.
vi.setConfig({ testTimeout: 120_000 });

let rig: Rig;
let primary: RigNode;
const mounts: string[] = [];

beforeAll(async () => {
  rig = new Rig({ baseDir: await newBaseDir('faults'), ipPrefix: '127.0.0.4' });
  primary = rig.node(0);
  await primary.up();
  await primary.sql('CREATE DATABASE shop');
  await primary.sql('CREATE TABLE shop.items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), price INT, KEY (name))');
  await primary.sql('CREATE TABLE shop.notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT)');
  for (let i = 0; i < 50; i++) await primary.sql('INSERT INTO shop.items (name, price) VALUES (?, ?)', [`item-${i}`, i * 7]);
  await primary.sql("INSERT INTO shop.notes (body) SELECT REPEAT('n', 500) FROM shop.items");
});

afterEach(async () => {
  for (const dir of mounts.splice(0)) unmount(dir);
});

afterAll(async () => {
  await rig?.destroy();
});

const MiB = 1024 * 1024;

/** The peer's estimate of a clone, from HEAD /backup (which starts nothing). */
async function estimate(): Promise<number> {
  const head = await primary.http('/backup', { method: 'HEAD', headers: { authorization: `Bearer ${rig.token}` } });
  return Number(head.headers.get('x-backup-estimated-bytes'));
}

/** A volume size (MiB) init accepts up front for a clone of the primary: the estimate, the prepare margin, 16 MiB more. */
async function acceptedVolumeMb(): Promise<number> {
  const bytes = await estimate();
  return Math.ceil((bytes + prepareMargin(bytes)) / MiB) + 16;
}

/** A shell line that fills the filesystem holding `dir` with `dir/filler`, all but `leaveBytes`. */
const fillLeaving = (dir: string, leaveBytes: number) => `fallocate -l $(( $(df --output=avail -B1 ${dir} | tail -1) - ${leaveBytes} )) ${dir}/filler`;

const failure = (lines: Record<string, unknown>[]) => String(lines.find((l) => l.phase === 'exit')?.err ?? '');

/** An empty node directory, optionally on a tmpfs of the given size. */
async function freshNode(ordinal: number, tmpfsMb?: number): Promise<RigNode> {
  const node = rig.node(ordinal);
  if (node.sidecar || node.server) await node.down();
  await rm(node.dataDir, { recursive: true, force: true });
  await mkdir(node.dataDir, { recursive: true });
  if (tmpfsMb) {
    mountTmpfs(node.dataDir, tmpfsMb);
    mounts.push(node.dataDir);
  }
  return node;
}

async function restartPrimarySidecar(extra: Record<string, string> = {}): Promise<void> {
  await primary.stopSidecar();
  primary.startSidecar(extra);
  await primary.waitFor('/readyz');
}
const throttled = () => ({ XTRABACKUP_ARGS: `--defaults-file=${primary.dir}/my.cnf --throttle=40` });

/** The replica has exactly the primary's rows: CHECKSUM TABLE per table, once it has caught up. */
const expectSameRows = (node: RigNode) => expectSameChecksums(primary, node, ['shop.items', 'shop.notes']);

async function bringUpAndCompare(node: RigNode): Promise<void> {
  await node.startServer();
  node.startSidecar();
  await node.waitFor('/readyz');
  await primary.sql('INSERT INTO shop.items (name, price) VALUES (?, ?)', [`after-${node.ordinal}-${Date.now()}`, 1]);
  await expectSameRows(node);
}

/** After a fault: the node's volume given back (no tmpfs), a clean clone, the primary's rows, the node down again. */
async function cloneCleanAndCompare(ordinal: number): Promise<void> {
  for (const dir of mounts.splice(0)) unmount(dir);
  const node = await freshNode(ordinal);
  const run = await node.init();
  expect(run.code).toBe(0);
  await bringUpAndCompare(node);
  await node.down();
}

const attempts = (lines: Record<string, unknown>[]) => lines.filter((l) => l.msg === 'clone attempt');
const retries = (lines: Record<string, unknown>[]) => lines.filter((l) => l.msg === 'clone attempt failed, retrying');
/** Retries allowed, quickly: what is retryable is retried, what is not must stop at one attempt. */
const RETRIES = { CLONE_RETRY_DEADLINE: '60', CLONE_RETRY_MAX_DELAY: '1' };

describe('faults during a clone', () => {
  it('refuses up front, saying how much room it needs, when DATA_DIR is too small', async () => {
    const node = await freshNode(1, 8);
    const run = await node.init();
    expect(run.code).toBe(1);
    expect(failure(run.lines)).toMatch(/needs about [\d.]+ MB \(the peer's estimate\) plus [\d.]+ MB for prepare but DATA_DIR's filesystem has [\d.]+ MB free: grow the volume/);
    expect(run.lines.filter((l) => l.msg === 'clone attempt')).toHaveLength(1);
    expect(await readdir(node.dataDir)).toEqual([]);
    await cloneCleanAndCompare(1);
  });

  it('refuses up front when the volume holds the estimate but not the margin prepare may need', async () => {
    const bytes = await estimate();
    const node = await freshNode(1, Math.ceil((bytes + prepareMargin(bytes) / 2) / MiB));
    const run = await node.init();
    expect(run.code).toBe(1);
    expect(failure(run.lines)).toMatch(/needs about [\d.]+ MB \(the peer's estimate\) plus [\d.]+ MB for prepare but DATA_DIR's filesystem has [\d.]+ MB free/);
    expect(run.lines.filter((l) => l.msg === 'clone attempt')).toHaveLength(1);
    expect(await readdir(node.dataDir)).toEqual([]);
    await cloneCleanAndCompare(1);
  });

  it('fails with the room it needed when the volume fills up mid-clone, leaving nothing behind', async () => {
    await restartPrimarySidecar(throttled());
    const size = await acceptedVolumeMb();
    const node = await freshNode(1, size);
    const init = node.init(RETRIES);
    await waitUntil(() => pidsMatching(`mbstream -x -C ${node.dataDir}`).length > 0, 'the extract to start', 20_000);
    // Something else on the volume takes the room the clone was counting on.
    await writeFile(join(node.dataDir, 'filler'), Buffer.alloc(0));
    await appendFile(join(node.dataDir, 'filler'), Buffer.alloc((size - 1) * MiB)).catch(() => {});
    const run = await init;
    expect(run.code).toBe(1);
    expect(failure(run.lines)).toMatch(/filesystem filled up after [\d.]+ MB of the clone: it needs about [\d.]+ MB .* had [\d.]+ MB free/);
    // Retries were allowed: a full volume is not retried (it would fill again).
    expect([attempts(run.lines).length, retries(run.lines).length]).toEqual([1, 0]);
    expect(await readdir(node.dataDir)).toEqual(['filler']);
    await restartPrimarySidecar();
    await cloneCleanAndCompare(1);
  });

  it('names the full volume when the stream tool fails after the whole stream was read, and does not retry', async () => {
    const node = await freshNode(1, await acceptedVolumeMb());
    // The stream tool reads the whole stream first, then something takes the room before it writes.
    const buffered = join(rig.options.baseDir, 'buffered-stream');
    const tool = join(rig.options.baseDir, 'mbstream-after-stdin');
    await writeFile(tool, `#!/bin/sh\ncat > ${buffered}\n${fillLeaving(node.dataDir, 512 * 1024)}\nexec mbstream "$@" < ${buffered}\n`, { mode: 0o755 });
    const run = await node.init({ XBSTREAM_BIN: tool, ...RETRIES });
    expect(run.code).toBe(1);
    expect(failure(run.lines)).toMatch(/filesystem filled up after [\d.]+ MB of the clone: it needs about [\d.]+ MB .* had [\d.]+ MB free/);
    expect([attempts(run.lines).length, retries(run.lines).length]).toEqual([1, 0]);
    expect(await readdir(node.dataDir)).toEqual(['filler']);
    await cloneCleanAndCompare(1);
  });

  it('names the full volume when prepare fills it (tablespaces grown by writes during the backup), leaving nothing behind', async () => {
    // Rows written after the backup copied their table (while it copies the Aria tables, which
    // are last): prepare applies them from the redo, which grows the table's file.
    await primary.sql('CREATE TABLE shop.load (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT)');
    // Not empty: MariaDB bulk-loads an INSERT … SELECT into an empty table without redo, and
    // mariadb-backup then copies the table again at the end instead of leaving it to prepare.
    await primary.sql("INSERT INTO shop.load (body) VALUES ('seed')");
    // A shutdown checkpoints: else the table's creation is in the redo the backup copies, and
    // mariadb-backup copies such a table again at the end, rows and all, leaving prepare nothing.
    await primary.stopServer();
    await primary.startServer();
    await restartPrimarySidecar(throttled());
    const node = await freshNode(1, (await acceptedVolumeMb()) + 64);
    // Init's backup tool only prepares: before it does, something takes all but 1 MiB.
    const tool = join(rig.options.baseDir, 'prepare-on-a-full-volume');
    await writeFile(tool, `#!/bin/sh\n${fillLeaving(node.dataDir, MiB)}\nexec mariadb-backup "$@"\n`, { mode: 0o755 });
    try {
      const init = node.init({ XTRABACKUP_BIN: tool, ...RETRIES });
      await waitUntil(() => primary.sidecarLines().some((l) => /Finished BACKUP STAGE START/.test(String(l.stderr))), 'the backup to be past the InnoDB files', 30_000);
      for (let i = 0; i < 10; i++) await primary.sql("INSERT INTO shop.load (body) SELECT REPEAT('w', 1000) FROM shop.seq_1_to_1000");
      const run = await init;
      expect(run.code).toBe(1);
      expect(failure(run.lines)).toMatch(/filesystem filled up while preparing the clone .*grow the volume or free space \(.*error 28/);
      expect([attempts(run.lines).length, retries(run.lines).length]).toEqual([1, 0]);
      expect(await readdir(node.dataDir)).toEqual(['filler']);
    } finally {
      await primary.sql('DROP TABLE shop.load');
      await restartPrimarySidecar();
    }
    await cloneCleanAndCompare(1);
  });

  it('cleans up after init is SIGKILLed mid-extract and succeeds on the next run', async () => {
    await restartPrimarySidecar(throttled());
    const node = await freshNode(1);
    await node.prepareDirs();
    const child = node.spawnInit();
    await waitUntil(() => pidsMatching(`mbstream -x -C ${node.dataDir}`).length > 0, 'the extract to start', 20_000);
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGKILL');
    await waitUntil(() => pidsMatching(`mbstream -x -C ${node.dataDir}`).length === 0, 'the orphaned extract to end', 20_000);
    expect(await readdir(node.dataDir)).toContain('.mysql-agent-clone');
    await restartPrimarySidecar();
    const run = await node.init();
    expect(run.code).toBe(0);
    expect(run.lines.some((l) => l.msg === 'removing the staging directory of an interrupted clone')).toBe(true);
    expect((await readdir(node.dataDir)).includes('.mysql-agent-clone')).toBe(false);
    await bringUpAndCompare(node);
  });

  it('waits for a peer name that does not resolve yet, then clones; gives up after the deadline if it never does', async () => {
    const node = await freshNode(2);
    // The peer of ordinal 2 is ordinal 1 (CLONE_SOURCE=previous: auto would also try ordinal 0).
    const template = { PEER_HOST_TEMPLATE: 'fault-peer-{ordinal}.mysql-agent.invalid', CLONE_SOURCE: 'previous' };
    const never = await node.init({ ...template, CLONE_RETRY_DEADLINE: '2', CLONE_RETRY_MAX_DELAY: '1' });
    expect(never.code).toBe(1);
    expect(failure(never.lines)).toMatch(/gave up after \d+ attempt\(s\).*fault-peer-1\.mysql-agent\.invalid:3307 unreachable \((ENOTFOUND|EAI_AGAIN)\)/);
    expect(await readdir(node.dataDir)).toEqual([]);

    // The name appears in this init's own /etc/hosts (a mount namespace of its own): the
    // machine's file is never changed, so no run, however it ends, leaves an entry behind.
    const hostsFile = join(rig.options.baseDir, 'hosts-of-init');
    await writeFile(hostsFile, await readFile('/etc/hosts'));
    const init = node.init({ ...template, CLONE_RETRY_DEADLINE: '60', CLONE_RETRY_MAX_DELAY: '1' }, { hostsFile });
    await new Promise((r) => setTimeout(r, 2500));
    // The name now points at node1's address... which is node1's agent: use the primary's instead.
    await appendFile(hostsFile, `\n${primary.ip} fault-peer-1.mysql-agent.invalid\n`);
    const run = await init;
    expect(run.code).toBe(0);
    expect(run.lines.some((l) => l.msg === 'clone attempt failed, retrying' && /ENOTFOUND|EAI_AGAIN/.test(String(l.err)))).toBe(true);
    expect(await readFile('/etc/hosts', 'utf8')).not.toContain('fault-peer-1.mysql-agent.invalid');
    await bringUpAndCompare(node);
    await node.down();
  });

  it('refuses a stream with one bit flipped in flight and leaves nothing behind', async () => {
    const node = await freshNode(1);
    let proxy: Server | undefined;
    try {
      proxy = await startBitFlipProxy({ host: primary.ip, port: 3318 }, { host: primary.ip, port: 3307 }, 8_000_000);
      const run = await node.init({ BACKUP_PORT: '3318', CLONE_RETRY_DEADLINE: '0' });
      expect(run.code).toBe(1);
      expect(failure(run.lines)).toMatch(/checksum/);
      expect(await readdir(node.dataDir)).toEqual([]);
    } finally {
      proxy?.close();
    }
    const clean = await node.init();
    expect(clean.code).toBe(0);
    await bringUpAndCompare(node);
  });

  it('retries a bit-flipped stream from scratch when retries are allowed: the first attempt fails its checksum, the second clones', async () => {
    const node = await freshNode(1);
    const proxy = await startBitFlipProxy({ host: primary.ip, port: 3319 }, { host: primary.ip, port: 3307 }, 8_000_000, 1);
    try {
      const run = await node.init({ BACKUP_PORT: '3319', ...RETRIES });
      expect(run.code).toBe(0);
      expect(attempts(run.lines).map((l) => l.attempt)).toEqual([1, 2]);
      expect(retries(run.lines)).toHaveLength(1);
      expect(String(retries(run.lines)[0]!.err)).toMatch(/checksum/);
      // From scratch: the second attempt extracts into an emptied staging directory (mbstream refuses files that exist).
      expect(await readdir(node.dataDir)).not.toContain('.mysql-agent-clone');
    } finally {
      proxy.close();
    }
    await bringUpAndCompare(node);
    await node.down();
  });
});

describe('faults around a running replica', () => {
  it('stays up, not ready, saying why, with a wrong replication password; replicates once the password matches', async () => {
    await primary.sql("CREATE USER 'repl2'@'%' IDENTIFIED BY 'the-right-one'");
    await primary.sql("GRANT REPLICATION SLAVE ON *.* TO 'repl2'@'%'");
    const node = await freshNode(1);
    const wrong = { REPLICATION_USER: 'repl2', REPLICATION_PASSWORD: 'a-wrong-password' };
    const run = await node.init(wrong);
    expect(run.code).toBe(0);
    await node.startServer();
    const sidecar = node.startSidecar(wrong);
    // The verdict, not a moment: right after START SLAVE the reason may still be the interim
    // "waiting for the local server" while last_io_error already says Access denied.
    const status = await waitForReason(node, /IO thread .*Access denied for user 'repl2'/, 'the IO thread verdict');
    expect(status.ready).toBe(false);
    expect(status.replication.last_io_error).toMatch(/Access denied for user 'repl2'/);
    expect((await node.http('/readyz')).status).toBe(503);
    await new Promise((r) => setTimeout(r, 2000));
    expect(sidecar.exitCode).toBeNull();
    expect(node.sidecarOutput).not.toContain('a-wrong-password');
    expect(JSON.stringify(status)).not.toContain('a-wrong-password');

    await primary.sql("ALTER USER 'repl2'@'%' IDENTIFIED BY 'a-wrong-password'");
    await node.waitFor('/readyz', 60_000);
    await primary.sql('INSERT INTO shop.items (name, price) VALUES (?, ?)', ['after-password', 2]);
    await expectSameRows(node);
    await node.down();
  });

  it('takes a rotated replication password at restart: the refused account is replaced once, position kept', async () => {
    await primary.sql("CREATE USER 'repl3'@'%' IDENTIFIED BY 'first-secret'");
    await primary.sql("GRANT REPLICATION SLAVE ON *.* TO 'repl3'@'%'");
    const node = await freshNode(1);
    const before = { REPLICATION_USER: 'repl3', REPLICATION_PASSWORD: 'first-secret' };
    expect((await node.init(before)).code).toBe(0);
    await node.startServer();
    node.startSidecar(before);
    await node.waitFor('/readyz');
    const recordFile = join(node.dataDir, 'mysql-agent-replication.json');
    const record = await readFile(recordFile, 'utf8');

    // The Secret is rotated: the primary's account gets the new password, the pod restarts with it.
    await primary.sql("ALTER USER 'repl3'@'%' IDENTIFIED BY 'second-secret'");
    await node.stopSidecar();
    await node.stopServer();
    await primary.sql('INSERT INTO shop.items (name, price) VALUES (?, ?)', ['while-rotating', 3]);
    await node.startServer();
    node.startSidecar({ REPLICATION_USER: 'repl3', REPLICATION_PASSWORD: 'second-secret' });
    await node.waitFor('/readyz', 60_000);
    await primary.sql('INSERT INTO shop.items (name, price) VALUES (?, ?)', ['after-rotation', 4]);
    await expectSameRows(node);

    const applied = node.sidecarLines().filter((l) => l.msg === 'applying').map((l) => l.sql);
    expect(applied).toEqual(['STOP SLAVE', "CHANGE MASTER TO MASTER_USER='repl3', MASTER_PASSWORD='***'", 'START SLAVE']);
    expect(node.sidecarLines().some((l) => /refuses the account/.test(String(l.msg)) && /Access denied/.test(String(l.io_error)))).toBe(true);
    expect(await readFile(recordFile, 'utf8')).toBe(record);
    expect(node.sidecarOutput).not.toContain('second-secret');
    await node.down();
  });

  it('issues a still-wrong password at most once per start: a configured replica restarted with it stays not ready, saying why, without looping', async () => {
    await primary.sql("CREATE USER 'repl4'@'%' IDENTIFIED BY 'good-secret'");
    await primary.sql("GRANT REPLICATION SLAVE ON *.* TO 'repl4'@'%'");
    const node = await freshNode(1);
    const good = { REPLICATION_USER: 'repl4', REPLICATION_PASSWORD: 'good-secret' };
    expect((await node.init(good)).code).toBe(0);
    await node.startServer();
    node.startSidecar(good);
    await node.waitFor('/readyz');

    // The primary's account is rotated, but the pod restarts with a password that is still wrong.
    await primary.sql("ALTER USER 'repl4'@'%' IDENTIFIED BY 'rotated-secret'");
    await node.stopSidecar();
    await node.stopServer();
    await node.startServer();
    node.startSidecar({ REPLICATION_USER: 'repl4', REPLICATION_PASSWORD: 'still-wrong' });
    const reissues = () => node.sidecarLines().filter((l) => l.msg === 'applying' && /MASTER_PASSWORD/.test(String(l.sql))).length;
    await waitUntil(() => reissues() > 0, 'the refused account to be reissued', 60_000);
    const status = await waitForReason(node, /IO thread .*Access denied for user 'repl4'/, 'the verdict after the reissue');
    expect(status.ready).toBe(false);
    // Four more rounds of the watch (every 5 s): the guard holds, the account is not issued again.
    await new Promise((r) => setTimeout(r, 20_000));
    expect(reissues()).toBe(1);
    expect((await node.http('/readyz')).status).toBe(503);
    expect(node.sidecarOutput).not.toContain('still-wrong');
    await node.down();
  });

  it('ends a backup whose client stops reading, and kills the backup tool', async () => {
    await restartPrimarySidecar({ BACKUP_IDLE_TIMEOUT: '2' });
    // A client that reads the first bytes and then nothing more, without closing.
    const req = request(primary.url('/backup'), { headers: { authorization: `Bearer ${rig.token}` } }, (res) => {
      res.once('data', () => res.pause());
    });
    req.on('error', () => {});
    req.end();
    try {
      await waitUntil(() => backupToolPids(primary.dataDir).length > 0, 'the backup to start');
      await waitUntil(() => backupToolPids(primary.dataDir).length === 0, 'the backup tool to be killed', 30_000);
      const status = await waitUntil(async () => {
        const s = (await (await primary.http('/status')).json()) as Record<string, any>;
        return s.last_backup?.finished_at ? s : undefined;
      }, 'the backup to be recorded');
      expect(status.last_backup.failure).toMatch(/client stopped reading/);
      expect(primary.sidecarLines().some((l) => l.msg === 'backup client stopped reading: ending the backup')).toBe(true);
    } finally {
      req.destroy();
    }
    await restartPrimarySidecar();
  });

  it('answers 401 to 200 requests with missing or wrong tokens, some concurrent, starting nothing and logging no token', async () => {
    const wrongTokens = Array.from({ length: 200 }, (_, i) => `wrong-token-${i}-${'x'.repeat(i % 20)}`);
    // Counted by the sidecar itself (every backup it starts ends in one of these counters or is
    // in progress), not by polling pgrep, which misses a tool that lives a few milliseconds.
    // test/unit/sidecar/http-server.test.ts counts the spawns themselves.
    const backupsSoFar = async () => {
      const text = await (await primary.http('/metrics')).text();
      return ['backups_served_total', 'backups_failed_total', 'backup_in_progress'].map((name) => Number(new RegExp(`^mysql_agent_${name} (\\S+)$`, 'm').exec(text)?.[1]));
    };
    const before = await backupsSoFar();
    expect(before.every(Number.isFinite)).toBe(true);
    const lastBefore = ((await (await primary.http('/status')).json()) as Record<string, unknown>).last_backup;
    for (let batch = 0; batch < 4; batch++) {
      const statuses = await Promise.all(
        wrongTokens.slice(batch * 50, batch * 50 + 50).map(async (token, i) => {
          const headers: Record<string, string> = i % 5 === 0 ? {} : { authorization: i % 7 === 0 ? `Basic ${token}` : `Bearer ${token}` };
          return (await primary.http('/backup', { headers })).status;
        }),
      );
      expect(new Set(statuses)).toEqual(new Set([401]));
    }
    expect(await backupsSoFar()).toEqual(before);
    expect(((await (await primary.http('/status')).json()) as Record<string, unknown>).last_backup).toEqual(lastBefore);
    const logs = primary.sidecarOutput;
    expect(logs).not.toContain(rig.token);
    for (const token of wrongTokens) expect(logs).not.toContain(token);
    for (const secret of [CREDENTIALS.agent, CREDENTIALS.replication, CREDENTIALS.root]) {
      expect(logs).not.toContain(secret);
      expect(await (await primary.http('/status')).text()).not.toContain(secret);
    }
  });
});
