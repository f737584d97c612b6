/**
 * manifests/components/monitoring/, offline: the committed files are what the generator makes
 * of thresholds.yaml, the PrometheusRule and the plain rules file hold the same rules, a flavor
 * rendered with the component validates (Kubernetes schemas; prometheus-operator's schemas and
 * types), the PodMonitor scrapes the port the sidecar serves /metrics on, every metric a rule or
 * a panel names is one the agent exports, and the README's alerts table lists every rule.
 */
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { ArchiveState } from '../../agent/sidecar/archive.js';
import { AgentMetrics } from '../../agent/sidecar/metrics.js';
import { consistencyProblems, primaryArchive, schemaProblems } from '../manifests/check.js';
import { type KubeDoc, REPO, findDoc, renderFlavor, statefulSet } from '../manifests/render.js';
import { FILES, type RuleGroup, alertGroups, dashboard, generated, readThresholds } from './monitoring.js';
import { isOperatorKind, operatorSchemaProblems } from './schemas.js';

const COMPONENT = 'components/monitoring';

/** The mariadb flavor with the monitoring component added, as a user would; `edit` may change the copy first. */
const renderWithMonitoring = (edit?: (dir: string) => Promise<void>) =>
  renderFlavor('mariadb', async (dir) => {
    const k = join(dir, 'mariadb/kustomization.yaml');
    await writeFile(k, `${await readFile(k, 'utf8')}components:\n  - ../${COMPONENT}\n`);
    await edit?.(dir);
  });

const problemsOf = (docs: KubeDoc[]) => [
  ...operatorSchemaProblems(docs.filter(isOperatorKind)),
  ...docs.filter((d) => !isOperatorKind(d)).flatMap(schemaProblems),
  ...consistencyProblems(docs.filter((d) => !isOperatorKind(d))),
];

/**
 * Every metric family the sidecar exports, with a histogram's series names: no single pod has
 * them all, so a replica with a clone's and a primary with the binary log archive's (every
 * archive field set, a gap included).
 */
async function exportedNames(): Promise<Set<string>> {
  const replica = new AgentMetrics({
    replication: async () => ({ configured: true, sourceHost: 'h', ioRunning: 'Yes', sqlRunning: 'Yes', secondsBehind: 0, lastIoError: null, lastIoErrno: null, lastSqlError: null, usingGtid: 'No', usesGtid: false }),
    ready: async () => true,
    backupInProgress: () => false,
    clone: { source: { host: 'h', port: 3307, ordinal: 0, choice: 'auto', why: '' }, bytes: 1, stream_duration_ms: 1, duration_ms: 1, finished_at: '2026-01-01T00:00:00Z', skipped: [] },
    pod: { role: 'replica', ordinal: 1 },
  });
  const archive: ArchiveState = {
    interval_s: 60,
    lag_seconds: 12,
    files_waiting: 1,
    files_archived: 3,
    bytes_archived: 1024,
    last_success_at: '2026-01-01T00:00:00Z',
    last_archived: { name: 'mysql-bin.000003', key: 'k', end_state: '0-100-9' },
    last_error: null,
    gaps: [{ before: 'mysql-bin.000002', startState: '0-100-5', detectedAt: '2026-01-01T00:00:00Z' }],
  };
  const primary = new AgentMetrics({ replication: async () => null, ready: async () => true, backupInProgress: () => null, clone: null, pod: { role: 'primary', ordinal: 0 }, archive: () => archive });
  const names = new Set<string>();
  for (const line of [...(await replica.render()).split('\n'), ...(await primary.render()).split('\n')]) {
    const name = /^([a-z_:][a-z0-9_:]*)[ {]/.exec(line)?.[1];
    if (name) names.add(name);
  }
  return names;
}

/** The metric names an expression selects: plain names, and the names a `__name__=~` matcher selects among `exported`. */
function metricsIn(expr: string, exported: ReadonlySet<string>): string[] {
  const names: string[] = [];
  for (const m of expr.matchAll(/__name__=~"([^"]+)"/g)) {
    const re = new RegExp(`^(?:${m[1]})$`);
    const matched = [...exported].filter((n) => re.test(n));
    names.push(...(matched.length > 0 ? matched : [`nothing matches ${m[1]}`]));
  }
  names.push(...[...expr.replace(/__name__=~"[^"]+"/g, '').matchAll(/\bmysql_agent_[a-z_]+/g)].map((m) => m[0]));
  return names;
}

describe('the generated files', () => {
  it('are what `npm run monitoring` makes of thresholds.yaml', () => {
    for (const [path, text] of Object.entries(generated())) {
      expect(readFileSync(path, 'utf8'), `${path} is stale: run \`npm run monitoring\``).toBe(text);
    }
  });

  it('hold the same rules in the PrometheusRule and in the plain rules file', () => {
    const rule = parse(readFileSync(FILES.prometheusRule, 'utf8')) as { spec: { groups: RuleGroup[] } };
    const plain = parse(readFileSync(FILES.rules, 'utf8')) as { groups: RuleGroup[] };
    expect(rule.spec.groups).toEqual(plain.groups);
    expect(plain.groups).toEqual(alertGroups(readThresholds()));
  });

  it('take every threshold from thresholds.yaml', () => {
    const t = readThresholds();
    const longer = alertGroups({ ...t, lagSeconds: 999, lagFor: '17m', notReplicatingFor: '13m' })[0]!.rules;
    expect(longer.find((r) => r.alert === 'MySQLReplicationLagHigh')).toMatchObject({ expr: 'mysql_agent_replication_lag_seconds > 999', for: '17m' });
    expect(longer.find((r) => r.alert === 'MySQLReplicaNotReplicating')!.for).toBe('13m');
  });

  it('refuse a thresholds.yaml with a misspelt key or a bad duration, naming it', () => {
    const text = readFileSync(FILES.thresholds, 'utf8');
    expect(() => readThresholds(text.replace('lagFor: 5m', 'lagFr: 5m'))).toThrow('lagFor must be a Prometheus duration such as 5m; lagFr is not a threshold');
    expect(() => readThresholds(text.replace('agentDownFor: 5m', 'agentDownFor: five minutes'))).toThrow('agentDownFor must be a Prometheus duration');
  });
});

describe('the component in a flavor', () => {
  it('adds the PodMonitor, the PrometheusRule and the dashboard ConfigMap, and everything validates', async () => {
    const docs = await renderWithMonitoring();
    for (const name of ['PodMonitor/mysql-agent', 'PrometheusRule/mysql-agent', 'ConfigMap/mysql-agent-dashboard']) {
      expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toContain(name);
    }
    expect(problemsOf(docs)).toEqual([]);
    const cm = findDoc(docs, 'ConfigMap', 'mysql-agent-dashboard') as KubeDoc & { data: Record<string, string> };
    expect(cm.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
    expect(JSON.parse(cm.data['mysql-agent.json']!)).toEqual(dashboard(readThresholds()));
  });

  it('scrapes the port and path the sidecar serves /metrics on, from the StatefulSet\'s pods, as the job the rules select', async () => {
    const docs = await renderWithMonitoring();
    const sts = statefulSet(docs);
    const pm = findDoc(docs, 'PodMonitor', 'mysql-agent') as KubeDoc & {
      spec: { jobLabel: string; selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; path: string }[] };
    };
    const labels = sts.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) expect(labels[k], `pod label ${k}`).toBe(v);
    expect(labels[pm.spec.jobLabel]).toBe(readThresholds().job);
    const sidecar = sts.spec.template.spec.containers.find((c) => c.name === 'sidecar')!;
    const port = sidecar.ports?.find((p) => p.name === pm.spec.podMetricsEndpoints[0]!.port);
    expect(port?.containerPort).toBe(Number(sidecar.env?.find((e) => e.name === 'BACKUP_PORT')?.value ?? 3307));
    expect(pm.spec.podMetricsEndpoints[0]!.path).toBe('/metrics');
  });

  it.each([
    ['a misspelt PodMonitor field', 'pod-monitor.yaml', 'podMetricsEndpoints:\n    - port: backup', 'podMetricsEndpoints:\n    - prot: backup', 'prot is not a field there'],
    ['a missing PodMonitor field', 'pod-monitor.yaml', 'podMetricsEndpoints:', 'podMetricEndpoints:', "must have required property podMetricsEndpoints"],
    ['a misspelt rule field', 'prometheus-rule.yaml', 'for: 5m', 'fore: 5m', 'fore is not a field there'],
    ['a bad duration', 'prometheus-rule.yaml', 'for: 5m', 'for: 5 minutes', 'for must match pattern'],
  ])('catches %s', async (_what, file, from, to, expected) => {
    const docs = await renderWithMonitoring(async (dir) => {
      const path = join(dir, COMPONENT, file);
      const text = await readFile(path, 'utf8');
      if (!text.includes(from)) throw new Error(`the typo's anchor "${from}" is not in ${file}`);
      await writeFile(path, text.replace(from, to));
    });
    expect(problemsOf(docs).join('\n')).toContain(expected);
  });
});

describe('rules and panels name only what the agent exports', () => {
  it('every mysql_agent_ metric of a rule or a panel is in /metrics', async () => {
    const names = await exportedNames();
    const t = readThresholds();
    const exprs = [...alertGroups(t).flatMap((g) => g.rules.map((r) => r.expr)), ...(dashboard(t).panels as { targets: { expr: string }[] }[]).flatMap((p) => p.targets.map((x) => x.expr))];
    const used = new Set(exprs.flatMap((e) => metricsIn(e, names)));
    expect(used).toContain('mysql_agent_replication_sql_running');
    expect(used).toContain('mysql_agent_binlog_archive_last_success_timestamp_seconds');
    for (const name of used) expect(names.has(name), name).toBe(true);
  });
});

describe('the archive alerts and the archiving sidecar', () => {
  it("take the BINLOG_ARCHIVE_INTERVAL that components/backup gives the primary's sidecar", async () => {
    const docs = await renderFlavor('mariadb', async (dir) => {
      await writeFile(join(dir, 'components/backup/store.env'), 'aws-access-key-id=test-access-key\naws-secret-access-key=test-secret-key\n');
      const k = join(dir, 'mariadb/kustomization.yaml');
      await writeFile(k, `${await readFile(k, 'utf8')}components:\n  - ../components/backup\n  - ../${COMPONENT}\n`);
    });
    const archive = primaryArchive(docs);
    if (typeof archive === 'string' || archive === null) throw new Error(archive ?? "the primary's sidecar archives nothing");
    const t = readThresholds();
    expect(archive.intervalMs / 1000, 'thresholds.yaml archiveIntervalSeconds against statefulset-patch.yaml BINLOG_ARCHIVE_INTERVAL').toBe(t.archiveIntervalSeconds);
    const lag = alertGroups(t)[0]!.rules.find((r) => r.alert === 'MySQLBinlogArchiveLagging')!;
    expect(lag.expr).toBe(`mysql_agent_binlog_archive_lag_seconds > ${t.archiveIntervalSeconds + t.archiveLagMarginSeconds}`);
  });

  it('take their thresholds from thresholds.yaml', () => {
    const t = readThresholds();
    const rules = alertGroups({ ...t, archiveIntervalSeconds: 300, archiveLagMarginSeconds: 45, archiveLagFor: '7m', archiveStalledAfter: '2h', archiveStalledFor: '11m' })[0]!.rules;
    expect(rules.find((r) => r.alert === 'MySQLBinlogArchiveLagging')).toMatchObject({ expr: 'mysql_agent_binlog_archive_lag_seconds > 345', for: '7m' });
    expect(rules.find((r) => r.alert === 'MySQLBinlogArchiveStalled')).toMatchObject({ for: '11m' });
    expect(rules.find((r) => r.alert === 'MySQLBinlogArchiveStalled')!.expr).toContain('< 7200');
  });
});

describe('README', () => {
  it('lists every alert with its for: and a runbook', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    for (const rule of alertGroups(readThresholds())[0]!.rules) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${rule.alert}\` |`));
      expect(row, rule.alert).toBeDefined();
      expect(row!.split(' | ')[2], rule.alert).toBe(rule.for);
    }
  });
});
