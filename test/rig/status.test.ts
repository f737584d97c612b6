/**
 * `mysql-agent status` (the built CLI) over three real nodes: all healthy; then one replica's SQL
 * thread stopped and the other lagging (a delayed replica); then that one's sidecar down too. The
 * JSON is checked field by field, the table against golden renderings (golden/) with the
 * volatile values masked (lags, ages, sizes, GTID sequence numbers, the server's patch version)
 * and runs of spaces collapsed, since column widths follow those values; exact alignment is the
 * unit tests' (test/unit/status/). --watch refreshes until SIGINT, on a pipe and on a terminal.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterStatus, PodRow } from '../../agent/status/rows.js';
import { countItems, createItems, delayReplica, insertItems, newBaseDir, runCli, waitUntil } from './helpers.js';
import { AGENT_CLI, Rig, type RigNode } from './rig.js';
import { expectGolden } from '../golden.js';

const PREFIX = '127.0.1.4';
let rig: Rig;
let primary: RigNode;

beforeAll(async () => {
  rig = new Rig({ baseDir: await newBaseDir('status'), ipPrefix: PREFIX });
  await rig.up(3);
  primary = rig.node(0);
  await createItems(primary, 5);
  for (const n of [1, 2]) await waitUntil(async () => (await countItems(rig.node(n))) === 5, `5 rows on node ${n}`);
}, 300_000);

afterAll(async () => {
  await rig?.destroy();
});

/** What an operator's shell would have on a laptop with port-forwards: the template, nothing else. */
const ENV = { PATH: process.env.PATH, PEER_HOST_TEMPLATE: `${PREFIX}{ordinal}`, PEER_STATUS_TIMEOUT: '2' };
const status = (...args: string[]) => runCli(['status', ...args], ENV);

async function json(): Promise<{ code: number; status: ClusterStatus }> {
  const run = await status('--json');
  expect(run.stderr).toBe('');
  return { code: run.code, status: JSON.parse(run.stdout) as ClusterStatus };
}

function masked(table: string): string {
  return table
    .replace(/\b\d+ s\b/g, 'N s')
    .replace(/\b\d+[smhd] ago\b/g, 'N ago')
    .replace(/\b\d+\.\d (kB|MB|GB)\b/g, 'X $1')
    .replace(/\b0-100-\d+\b/g, '0-100-N')
    .replace(/\b\d+\.\d+\.\d+-MariaDB\b/g, 'X.Y.Z-MariaDB')
    .replace(/ {2,}/g, '  ');
}

const byPod = (s: ClusterStatus) => Object.fromEntries(s.pods.map((p) => [p.pod, p])) as Record<string, PodRow>;
const host = (n: number) => `${PREFIX}${n}`;

describe('mysql-agent status on the rig', () => {
  it('three healthy pods: exit 0, every field from their /status', async () => {
    const { code, status: s } = await json();
    expect(code).toBe(0);
    expect(s.healthy).toBe(true);
    expect(Date.now() - Date.parse(s.asked_at)).toBeLessThan(30_000);
    const pods = byPod(s);
    expect(Object.keys(pods)).toEqual(['mysql-0', 'mysql-1', 'mysql-2']);
    const gtid = pods['mysql-0']!.gtid_executed!;
    expect(gtid).toMatch(/^0-100-\d+$/);
    expect(pods['mysql-0']).toMatchObject({
      ordinal: 0,
      host: host(0),
      answered: true,
      error: null,
      role: 'primary',
      ready: true,
      not_ready_reason: null,
      source_host: null,
      io_running: null,
      sql_running: null,
      seconds_behind: null,
      behind_primary: null,
      // It served the clone of mysql-1 (mysql-2 cloned from mysql-1, the closest caught-up replica).
      backup: { finished_at: expect.any(String), failure: null, bytes: expect.any(Number) },
      clone: null,
      healthy: true,
      problems: [],
    });
    expect(pods['mysql-0']!.server_version).toMatch(/^10\.11\.\d+-MariaDB/);
    for (const [n, from] of [[1, 0], [2, 1]] as const) {
      expect(pods[`mysql-${n}`], `mysql-${n}`).toMatchObject({
        ordinal: n,
        host: host(n),
        role: 'replica',
        ready: true,
        source_host: host(0),
        io_running: 'Yes',
        sql_running: 'Yes',
        seconds_behind: 0,
        gtid_executed: gtid,
        behind_primary: { transactions: 0, reason: null },
        clone: { source_host: host(from), source_ordinal: from, choice: 'auto', finished_at: expect.any(String), bytes: expect.any(Number) },
        healthy: true,
      });
    }
    expect(pods['mysql-1']!.backup).toMatchObject({ failure: null });
    expect(pods['mysql-2']!.backup).toBeNull();

    const table = await status();
    expect(table.code).toBe(0);
    await expectGolden(masked(table.stdout), 'golden/status-healthy.txt', import.meta.dirname);
  });

  it('a stopped SQL thread and a lagging replica: exit 1, each named with its reason and its distance in transactions', async () => {
    const [node1, node2] = [rig.node(1), rig.node(2)];
    await node1.sql('STOP SLAVE SQL_THREAD');
    await delayReplica(node2);
    await insertItems(primary, 3);
    await waitUntil(async () => {
      const s = byPod((await json()).status)['mysql-2'];
      return s && s.seconds_behind !== null && s.seconds_behind > 3 && !s.ready;
    }, 'mysql-2 to fall more than 3 s behind', 60_000);

    const { code, status: s } = await json();
    expect(code).toBe(1);
    expect(s.healthy).toBe(false);
    const pods = byPod(s);
    expect(pods['mysql-0']).toMatchObject({ healthy: true, problems: [] });
    expect(pods['mysql-1']).toMatchObject({
      ready: false,
      not_ready_reason: 'SQL thread No',
      io_running: 'Yes',
      sql_running: 'No',
      seconds_behind: null,
      behind_primary: { transactions: 3, reason: null },
      healthy: false,
      problems: ['not ready: SQL thread No'],
    });
    expect(pods['mysql-2']).toMatchObject({
      ready: false,
      io_running: 'Yes',
      sql_running: 'Yes',
      behind_primary: { transactions: 3, reason: null },
      healthy: false,
    });
    expect(pods['mysql-2']!.not_ready_reason).toMatch(/^\d+ s behind the primary \(READY_MAX_LAG=2\)$/);
    expect(pods['mysql-2']!.problems).toEqual([`not ready: ${pods['mysql-2']!.not_ready_reason}`]);

    const table = await status();
    expect(table.code).toBe(1);
    await expectGolden(masked(table.stdout), 'golden/status-stopped-lagging.txt', import.meta.dirname);
  });

  it('and that replica\'s sidecar down: its row says why there is no answer', async () => {
    await rig.node(2).stopSidecar();
    const { code, status: s } = await json();
    expect(code).toBe(1);
    expect(byPod(s)['mysql-2']).toEqual({
      ordinal: 2,
      pod: 'mysql-2',
      host: host(2),
      answered: false,
      error: `connect ECONNREFUSED ${host(2)}:3307`,
      role: null,
      ready: null,
      not_ready_reason: null,
      server_version: null,
      source_host: null,
      io_running: null,
      sql_running: null,
      seconds_behind: null,
      gtid_executed: null,
      behind_primary: null,
      backup: null,
      clone: null,
      healthy: false,
      problems: [`no answer: connect ECONNREFUSED ${host(2)}:3307`],
    });
    expect(byPod(s)['mysql-1']!.problems).toEqual(['not ready: SQL thread No']);
    const table = await status();
    expect(table.code).toBe(1);
    await expectGolden(masked(table.stdout), 'golden/status-sidecar-down.txt', import.meta.dirname);
  });

  it('--watch on a pipe: a frame per refresh until SIGINT, then the last verdict as exit status', async () => {
    const child = spawn(process.execPath, [AGENT_CLI, 'status', '--watch', '--watch-interval', '1'], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await waitUntil(() => (out.match(/^every 1 s, /gm) ?? []).length >= 2, 'two refreshes', 20_000);
    const stopped = Date.now();
    child.kill('SIGINT');
    expect(await exited).toBe(1);
    expect(Date.now() - stopped).toBeLessThan(3000);
    const frames = out.split(/^every 1 s, /m).slice(1);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    for (const f of frames.slice(0, 2)) expect(f).toContain('3 pods, 2 not healthy: mysql-1, mysql-2');
    expect(out).not.toContain('\x1b[');
  });

  it('--watch on a terminal: redraws in place, in colour unless NO_COLOR is set', async () => {
    // script(1) gives the CLI a pseudo-terminal as stdout.
    const onTerminal = async (env: Record<string, string>) => {
      // exec: the CLI itself, not a shell around it, is the terminal's foreground process.
      const command = ['exec', process.execPath, AGENT_CLI, 'status', '--watch', '--watch-interval', '1'].join(' ');
      const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...ENV, ...env, TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      await waitUntil(() => (out.match(/\x1b\[H\x1b\[2J/g) ?? []).length >= 2, 'two redraws on the terminal', 20_000);
      // Ctrl-C as a person types it: the terminal sends SIGINT to the CLI.
      child.stdin.write('\x03');
      return { code: await exited, out };
    };
    const coloured = await onTerminal({});
    expect(coloured.code).toBe(1);
    expect(coloured.out).toContain('\x1b[31mno\x1b[0m');
    expect(coloured.out).toContain('\x1b[32myes\x1b[0m');
    const plain = await onTerminal({ NO_COLOR: '1' });
    expect(plain.out.replace(/\x1b\[H\x1b\[2J/g, '')).not.toContain('\x1b[');
  });

  it('bad usage exits 2 with one line naming the setting', async () => {
    const run = await status('--pod-count', 'many');
    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toBe('mysql-agent: POD_COUNT="many" is invalid: expected a whole number from 1 to 1000\n');
  });
});
