/**
 * The alert rules and the dashboard on a real Prometheus (Debian's): it scrapes the three rig
 * sidecars every second (its own config, data directory and loopback port), evaluates the rules
 * every second with MySQLReplicaNotReplicating's `for:` shortened to 10 s through the generator
 * (the rules are otherwise those of thresholds.yaml), and is asked over its HTTP API: every
 * panel of the committed dashboard returns data, and a replica whose SQL thread is stopped makes
 * the replication alert go pending, then firing within its `for:`, then resolve.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { FILES, readThresholds, rulesFileText } from '../monitoring/monitoring.js';
import { createItems, newBaseDir, rawGet, waitUntil } from './helpers.js';
import { Rig } from './rig.js';

const PREFIX = '127.0.1.5';
const PROMETHEUS = { host: `${PREFIX}9`, port: 19090 };
const API = `http://${PROMETHEUS.host}:${PROMETHEUS.port}/api/v1`;
const FOR_SECONDS = 10;
const EVALUATION_SECONDS = 1;
const thresholds = { ...readThresholds(), notReplicatingFor: `${FOR_SECONDS}s` };

let rig: Rig;
let prometheus: ChildProcess;
let prometheusLog = '';

interface Sample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}
interface Alert {
  readonly labels: Record<string, string>;
  readonly state: 'pending' | 'firing';
  readonly activeAt: string;
}

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${API}${path}`);
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error}`);
  return body.data;
}
const query = async (expr: string) => (await api<{ resultType: string; result: Sample[] }>(`/query?query=${encodeURIComponent(expr)}`)).result;
const alerts = async () => (await api<{ alerts: Alert[] }>('/alerts')).alerts;

beforeAll(async () => {
  const base = await newBaseDir('monitoring');
  rig = new Rig({ baseDir: base, ipPrefix: PREFIX });
  await rig.up(3);
  await createItems(rig.node(0), 2);

  const dir = join(base, 'prometheus');
  await mkdir(join(dir, 'data'), { recursive: true });
  await writeFile(join(dir, 'rules.yml'), rulesFileText(thresholds));
  await writeFile(
    join(dir, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: `${EVALUATION_SECONDS}s` },
      rule_files: [join(dir, 'rules.yml')],
      // As the PodMonitor's scrape labels them: job from the pods' app label, namespace, pod.
      scrape_configs: [
        {
          job_name: thresholds.job,
          metrics_path: '/metrics',
          static_configs: [0, 1, 2].map((n) => ({ targets: [`${rig.node(n).ip}:3307`], labels: { namespace: 'rig', pod: `mysql-${n}` } })),
        },
      ],
    }),
  );
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${PROMETHEUS.host}:${PROMETHEUS.port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  rig.track(prometheus);
  prometheus.stdout!.on('data', (d: Buffer) => (prometheusLog += d.toString()));
  prometheus.stderr!.on('data', (d: Buffer) => (prometheusLog += d.toString()));
  await waitUntil(async () => (await fetch(`http://${PROMETHEUS.host}:${PROMETHEUS.port}/-/ready`)).ok, `Prometheus to be ready (${prometheusLog})`, 60_000);
  await waitUntil(async () => {
    const { activeTargets } = await api<{ activeTargets: { health: string }[] }>('/targets');
    return activeTargets.length === 3 && activeTargets.every((t) => t.health === 'up');
  }, 'Prometheus to scrape the three sidecars', 30_000);
}, 300_000);

afterAll(async () => {
  if (prometheus) await rig.stop(prometheus, 'SIGTERM', 10_000);
  await rig?.destroy();
});

describe('a real Prometheus on the rig', () => {
  it('returns data for every panel of the dashboard', async () => {
    // A backup while Prometheus watches, so the per-hour and per-second backup panels have something to show.
    const before = Number((await query('mysql_agent_backups_served_total{pod="mysql-1"}'))[0]!.value[1]);
    const backup = await rawGet(rig.node(1).url('/backup'), { authorization: `Bearer ${rig.token}` });
    expect(backup.trailers['x-backup-status']).toBe('Success');
    await waitUntil(async () => Number((await query('mysql_agent_backups_served_total{pod="mysql-1"}'))[0]?.value[1]) === before + 1, 'Prometheus to see the backup');

    const board = JSON.parse(readFileSync(FILES.dashboard, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    expect(board.panels.length).toBeGreaterThanOrEqual(8);
    const empty: string[] = [];
    for (const panel of board.panels) {
      for (const { expr } of panel.targets) {
        const result = await query(expr);
        if (!result.some((s) => Number.isFinite(Number(s.value[1])))) empty.push(`${panel.title}: ${expr} -> ${JSON.stringify(result)}`);
      }
    }
    expect(empty).toEqual([]);
  });

  it('fires MySQLReplicaNotReplicating when a replica\'s SQL thread stops: pending, then firing within its for:, then resolved', async () => {
    const node2 = rig.node(2);
    const ours = (a: Alert) => a.labels.alertname === 'MySQLReplicaNotReplicating' && a.labels.pod === 'mysql-2';
    expect((await alerts()).filter(ours)).toEqual([]);

    await node2.sql('STOP SLAVE SQL_THREAD');
    const stopped = Date.now();
    const seen: { state: string; at: number; activeAt: number }[] = [];
    await waitUntil(async () => {
      const a = (await alerts()).find(ours);
      if (a && seen.at(-1)?.state !== a.state) seen.push({ state: a.state, at: Date.now(), activeAt: Date.parse(a.activeAt) });
      return a?.state === 'firing';
    }, 'the alert to fire', 60_000);

    const [pending, firing] = seen;
    expect(seen.map((s) => s.state)).toEqual(['pending', 'firing']);
    expect(firing!.activeAt).toBe(pending!.activeAt);
    // Pending within a scrape and an evaluation (and the poll) of the stop.
    expect(pending!.at - stopped).toBeLessThan(5_000);
    // Firing once it has been pending for `for:`, within two evaluations more.
    const pendingFor = (firing!.at - firing!.activeAt) / 1000;
    expect(pendingFor).toBeGreaterThanOrEqual(FOR_SECONDS);
    expect(pendingFor).toBeLessThanOrEqual(FOR_SECONDS + 2 * EVALUATION_SECONDS + 1);
    const labels = (await alerts()).find(ours)!.labels;
    expect(labels).toEqual({ alertname: 'MySQLReplicaNotReplicating', namespace: 'rig', pod: 'mysql-2', severity: 'critical' });
    // The only alert the stopped thread raises this soon; the others keep their thresholds.yaml for:.
    expect((await alerts()).filter((a) => a.state === 'firing').map((a) => a.labels.alertname)).toEqual(['MySQLReplicaNotReplicating']);

    await node2.sql('START SLAVE SQL_THREAD');
    await waitUntil(async () => !(await alerts()).some(ours), 'the alert to resolve', 30_000);
    await delay(EVALUATION_SECONDS * 1000);
    expect((await query('mysql_agent_replication_sql_running{pod="mysql-2"}'))[0]!.value[1]).toBe('1');
  });
});
