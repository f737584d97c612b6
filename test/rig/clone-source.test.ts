/**
 * CLONE_SOURCE=auto on real servers: a new node (ordinal 3) asks ordinals 0-2 for /status and
 * clones from the closest caught-up replica, else the primary; a stopped, stalled, lagging or
 * busy peer is skipped with the reason logged, and a peer that breaks mid-stream is left for the
 * next. A replica's /readyz follows its lag; /metrics shows it all.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentRun, Rig, type RigNode } from './rig.js';
import { backupToolPids, delayReplica, newBaseDir, rawGet, waitUntil } from './helpers.js';
import { parseExposition, valueOf } from '../prom-text.js';

let rig: Rig;
let primary: RigNode;
let newcomer: RigNode;

beforeAll(async () => {
  rig = new Rig({ baseDir: await newBaseDir('clone-source'), ipPrefix: '127.0.0.2' });
  await rig.up(3);
  primary = rig.node(0);
  newcomer = rig.node(3);
  await primary.sql('CREATE DATABASE app');
  await primary.sql('CREATE TABLE app.items (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))');
  await write(20);
  for (const n of [1, 2]) await waitUntil(async () => (await count(n)) === 20, `20 rows on node ${n}`);
}, 300_000);

afterAll(async () => {
  await rig?.destroy();
});

let written = 0;
async function write(rows: number): Promise<void> {
  for (let i = 0; i < rows; i++) await primary.sql('INSERT INTO app.items (v) VALUES (?)', [`row-${written++}`]);
}
const count = async (n: number) => Number((await rig.node(n).sql<{ n: number }>('SELECT COUNT(*) AS n FROM app.items'))[0]!.n);
const status = async (n: number) => (await (await rig.node(n).http('/status?fresh=1')).json()) as Record<string, any>;
const scrape = async (n: number) => {
  const res = await rig.node(n).http('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return parseExposition(await res.text());
};

/** The log lines that say what init chose, skipped and accepted. */
function choice(run: AgentRun) {
  const skipped = Object.fromEntries(run.lines.filter((l) => l.msg === 'clone source skipped').map((l) => [Number(l.peer_ordinal), String(l.reason)]));
  const accepted = run.lines.find((l) => l.msg === 'clone accepted into the datadir');
  return { skipped, accepted: accepted ? Number(accepted.peer_ordinal) : null };
}

/** Throws away the newcomer, as deleting its pod and volume would. */
async function resetNewcomer(): Promise<void> {
  if (newcomer.sidecar) await newcomer.stopSidecar();
  if (newcomer.server) await newcomer.stopServer();
  await rm(newcomer.dataDir, { recursive: true, force: true });
  await mkdir(newcomer.dataDir, { recursive: true });
}

async function initNewcomer(env: Record<string, string> = {}): Promise<AgentRun> {
  await resetNewcomer();
  const run = await newcomer.init({ CLONE_RETRY_DEADLINE: '120', ...env });
  expect(run.code, JSON.stringify(run.lines.at(-1))).toBe(0);
  return run;
}

describe('choosing the clone source', () => {
  it('with node1 stopped, clones from node2 (the closest caught-up replica), records it, and catches up', async () => {
    await rig.node(1).down();
    const run = await initNewcomer();
    const { skipped, accepted } = choice(run);
    expect(skipped[1]).toMatch(/^no answer: .*ECONNREFUSED/);
    expect(accepted).toBe(2);
    const record = JSON.parse(await readFile(join(newcomer.dataDir, 'mysql-agent-clone.json'), 'utf8'));
    expect(record.source).toMatchObject({ host: '127.0.0.22', ordinal: 2, choice: 'auto' });
    expect(record.skipped).toEqual([{ ordinal: 1, host: '127.0.0.21', reason: skipped[1] }]);
    expect(record.bytes).toBeGreaterThan(1_000_000);

    await newcomer.startServer();
    newcomer.startSidecar();
    await newcomer.waitFor('/readyz');
    await write(5);
    await waitUntil(async () => (await count(3)) === written, `${written} rows on the newcomer`);
    expect((await status(3)).clone).toMatchObject({ source: { ordinal: 2, choice: 'auto' }, bytes: record.bytes });
    const m = await scrape(3);
    expect(valueOf(m, 'mysql_agent_clone_bytes')).toBe(record.bytes);
    expect(valueOf(m, 'mysql_agent_clone_source_info', { peer: '127.0.0.22', ordinal: '2', choice: 'auto' })).toBe(1);
    expect(valueOf(m, 'mysql_agent_clone_duration_seconds')).toBeGreaterThan(0);

    await rig.node(1).startServer();
    rig.node(1).startSidecar();
    await rig.node(1).waitFor('/readyz', 90_000);
  });

  it('passes over node2 while its SQL thread is stopped and the primary takes writes; node2 is not ready until it catches up', async () => {
    const node2 = rig.node(2);
    await node2.sql('STOP SLAVE SQL_THREAD');
    await write(10);
    await waitUntil(async () => (await node2.http('/readyz')).status === 503, 'node2 not ready');
    const s = await status(2);
    expect(s).toMatchObject({ ready: false, replicating: false, replication: { io_running: 'Yes', sql_running: 'No', seconds_behind: null } });
    expect(s.not_ready_reason).toContain('SQL thread No');
    const m = await scrape(2);
    expect(valueOf(m, 'mysql_agent_replication_sql_running')).toBe(0);
    expect(valueOf(m, 'mysql_agent_replication_io_running')).toBe(1);
    expect(valueOf(m, 'mysql_agent_replication_lag_seconds')).toBeUndefined();
    expect(valueOf(m, 'mysql_agent_ready')).toBe(0);

    const { skipped, accepted } = choice(await initNewcomer());
    expect(skipped[2]).toBe('not replicating (IO thread Yes, SQL thread No)');
    expect(accepted).toBe(1);

    await node2.sql('START SLAVE SQL_THREAD');
    await node2.waitFor('/readyz', 60_000);
    await waitUntil(async () => (await count(2)) === written, `node2 to apply all ${written} rows`);
    expect(valueOf(await scrape(2), 'mysql_agent_replication_sql_running')).toBe(1);
  });

  it('passes over a replica lagging beyond CLONE_MAX_LAG, and its /readyz turns false beyond READY_MAX_LAG', async () => {
    const node2 = rig.node(2);
    await delayReplica(node2);
    await write(1);
    const lagging = await waitUntil(async () => {
      const s = await status(2);
      return s.replication?.seconds_behind > 3 ? s : undefined;
    }, 'node2 to fall more than 3 s behind', 60_000);
    expect(lagging).toMatchObject({ ready: false, replicating: true });
    expect(lagging.not_ready_reason).toMatch(/^\d+ s behind the primary \(READY_MAX_LAG=2\)$/);
    expect((await node2.http('/readyz')).status).toBe(503);
    expect(valueOf(await scrape(2), 'mysql_agent_replication_lag_seconds')).toBeGreaterThan(3);

    const { skipped, accepted } = choice(await initNewcomer({ CLONE_MAX_LAG: '2' }));
    expect(skipped[2]).toMatch(/^\d+ s behind the primary \(CLONE_MAX_LAG=2\)$/);
    expect(accepted).toBe(1);

    await node2.sql('STOP SLAVE');
    await node2.sql('CHANGE MASTER TO MASTER_DELAY = 0');
    await node2.sql('START SLAVE');
    await node2.waitFor('/readyz', 60_000);
    await node2.stopSidecar();
    node2.startSidecar();
    await node2.waitFor('/readyz');
  });

  it('passes over a replica that is serving a slow backup', async () => {
    const node2 = rig.node(2);
    await node2.stopSidecar();
    node2.startSidecar({ XTRABACKUP_ARGS: `--defaults-file=${node2.dir}/my.cnf --throttle=1` });
    await node2.waitFor('/readyz');
    let stop = false;
    const slow = rawGet(node2.url('/backup'), { authorization: `Bearer ${rig.token}` }, (_bytes, destroy) => {
      if (stop) destroy();
    });
    await waitUntil(async () => (await status(2)).serving_backup === true, 'node2 to serve the slow backup');
    expect(valueOf(await scrape(2), 'mysql_agent_backup_in_progress')).toBe(1);

    const { skipped, accepted } = choice(await initNewcomer());
    expect(skipped[2]).toBe('serving a backup');
    expect(accepted).toBe(1);

    stop = true;
    await slow;
    await waitUntil(() => backupToolPids(node2.dataDir).length === 0, 'the slow backup to end', 20_000);
    // The tool is gone a moment before the sidecar has recorded the backup.
    await waitUntil(async () => (await status(2)).serving_backup === false, 'node2 to record the backup');
    const m = await scrape(2);
    expect(valueOf(m, 'mysql_agent_backup_in_progress')).toBe(0);
    expect(valueOf(m, 'mysql_agent_backups_failed_total')).toBe(1);
    expect(valueOf(m, 'mysql_agent_backups_served_total')).toBe(0);
  });

  it('moves on to the next candidate when the chosen one breaks mid-stream', async () => {
    const node2 = rig.node(2);
    await node2.stopSidecar();
    node2.startSidecar({ XTRABACKUP_ARGS: `--defaults-file=${node2.dir}/my.cnf --throttle=50` });
    await node2.waitFor('/readyz');
    await resetNewcomer();
    const init = newcomer.init({ CLONE_RETRY_DEADLINE: '120' });
    await waitUntil(() => backupToolPids(node2.dataDir)[0], 'node2 to start sending', 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    for (const pid of backupToolPids(node2.dataDir)) process.kill(pid, 'SIGKILL');
    const run = await init;
    expect(run.code).toBe(0);
    const failed = run.lines.find((l) => l.msg === 'clone source failed, trying the next');
    expect(failed).toMatchObject({ peer_ordinal: 2 });
    expect(String(failed?.err), JSON.stringify(failed)).toMatch(/reported the backup failed|broke after|without a status trailer|extracting the stream/);
    expect(choice(run).accepted).toBe(1);
    // One round: the fallback happened without waiting for a retry.
    expect(run.lines.filter((l) => l.msg === 'clone attempt failed, retrying')).toEqual([]);
    await node2.stopSidecar();
    node2.startSidecar();
    await node2.waitFor('/readyz');
  });

  it('CLONE_SOURCE=primary clones from ordinal 0 without asking anyone', async () => {
    const run = await initNewcomer({ CLONE_SOURCE: 'primary' });
    expect(run.lines.some((l) => l.msg === 'clone source skipped')).toBe(false);
    expect(choice(run).accepted).toBe(0);
    const record = JSON.parse(await readFile(join(newcomer.dataDir, 'mysql-agent-clone.json'), 'utf8'));
    expect(record.source).toMatchObject({ ordinal: 0, choice: 'primary', why: 'CLONE_SOURCE=primary' });
  });
});

describe('GET /metrics', () => {
  it('parses as Prometheus text, and its backup counters move after a backup', async () => {
    const node1 = rig.node(1);
    const before = await scrape(1);
    expect(before.types).toMatchObject({
      mysql_agent_backups_served_total: 'counter',
      mysql_agent_backup_bytes_total: 'counter',
      mysql_agent_backup_in_progress: 'gauge',
      mysql_agent_replication_lag_seconds: 'gauge',
      mysql_agent_process_resident_memory_bytes: 'gauge',
    });
    expect(valueOf(before, 'mysql_agent_replication_io_running', { source_host: '127.0.0.20' })).toBe(1);
    const served = valueOf(before, 'mysql_agent_backups_served_total')!;
    const bytes = valueOf(before, 'mysql_agent_backup_bytes_total')!;

    const res = await rawGet(node1.url('/backup'), { authorization: `Bearer ${rig.token}` });
    expect(res.trailers['x-backup-status']).toBe('Success');
    const after = await waitUntil(async () => {
      const m = await scrape(1);
      return valueOf(m, 'mysql_agent_backups_served_total') === served + 1 ? m : undefined;
    }, 'the served counter to move');
    expect(valueOf(after, 'mysql_agent_backup_bytes_total')).toBe(bytes + res.bytes);
    expect(valueOf(after, 'mysql_agent_backups_failed_total')).toBe(valueOf(before, 'mysql_agent_backups_failed_total'));
    expect(valueOf(after, 'mysql_agent_backup_in_progress')).toBe(0);
    expect(valueOf(after, 'mysql_agent_process_resident_memory_bytes')).toBeGreaterThan(0);
  });
});
