/**
 * The generator of manifests/components/monitoring/: from thresholds.yaml (the one place for
 * thresholds) it writes the alert rules twice, as a PrometheusRule for prometheus-operator and as
 * a plain Prometheus rules file, and the Grafana dashboard whose panels the status command shows
 * over time. `npm run monitoring` rewrites them; a test fails while they are stale. The rig test
 * calls `alertGroups` with a shorter `for:` to see an alert fire within a test's time.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';

export const MONITORING = resolve(import.meta.dirname, '../../manifests/components/monitoring');
export const FILES = {
  thresholds: join(MONITORING, 'thresholds.yaml'),
  prometheusRule: join(MONITORING, 'prometheus-rule.yaml'),
  rules: join(MONITORING, 'mysql-agent.rules.yml'),
  dashboard: join(MONITORING, 'dashboard.json'),
} as const;

export interface Thresholds {
  readonly job: string;
  readonly notReplicatingFor: string;
  readonly lagSeconds: number;
  readonly lagFor: string;
  readonly replicaNotReadyFor: string;
  readonly noPrimaryFor: string;
  readonly agentDownFor: string;
  readonly backupFailedWindow: string;
  readonly archiveIntervalSeconds: number;
  readonly archiveLagMarginSeconds: number;
  readonly archiveLagFor: string;
  readonly archiveStalledAfter: string;
  readonly archiveStalledFor: string;
}

const DURATION = /^([0-9]+)(s|m|h|d|w)$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
/** A duration of thresholds.yaml in seconds, for expressions that compare with time(). */
const seconds = (d: string) => {
  const m = DURATION.exec(d)!;
  return Number(m[1]) * UNIT_SECONDS[m[2]!]!;
};

/** thresholds.yaml, every key checked: a typo must not silently fall back to nothing. */
export function readThresholds(text = readFileSync(FILES.thresholds, 'utf8')): Thresholds {
  const t = parse(text) as Record<string, unknown>;
  const problems: string[] = [];
  const durations = ['notReplicatingFor', 'lagFor', 'replicaNotReadyFor', 'noPrimaryFor', 'agentDownFor', 'backupFailedWindow', 'archiveLagFor', 'archiveStalledAfter', 'archiveStalledFor'];
  const numbers = ['lagSeconds', 'archiveIntervalSeconds', 'archiveLagMarginSeconds'];
  for (const key of durations) if (typeof t[key] !== 'string' || !DURATION.test(t[key])) problems.push(`${key} must be a Prometheus duration such as 5m`);
  for (const key of numbers) if (typeof t[key] !== 'number' || !(t[key] > 0)) problems.push(`${key} must be a positive number`);
  if (typeof t.job !== 'string' || !/^[A-Za-z0-9_./-]+$/.test(t.job)) problems.push('job must be a scrape job name');
  for (const key of Object.keys(t)) if (![...durations, ...numbers, 'job'].includes(key)) problems.push(`${key} is not a threshold`);
  if (problems.length > 0) throw new Error(`thresholds.yaml: ${problems.join('; ')}`);
  return t as unknown as Thresholds;
}

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: { readonly severity: 'critical' | 'warning' };
  readonly annotations: { readonly summary: string; readonly description: string; readonly runbook: string };
}

export interface RuleGroup {
  readonly name: string;
  readonly rules: readonly AlertRule[];
}

const STATUS = 'kubectl exec -n {{ $labels.namespace }} {{ $labels.pod }} -c sidecar -- mysql-agent status';

const ARCHIVE = 'Read the pod\'s /status `binlog_archive` (`last_error`, `files_waiting`, `gaps`) and `kubectl logs {{ $labels.pod }} -n {{ $labels.namespace }} -c sidecar | grep \'"phase":"archive"\'`';

/** The alerts, for the metrics the agent has today (off-site backups and drills add theirs when their metrics land). */
export function alertGroups(t: Thresholds): RuleGroup[] {
  const lagLimit = t.archiveIntervalSeconds + t.archiveLagMarginSeconds;
  return [
    {
      name: 'mysql-agent',
      rules: [
        {
          alert: 'MySQLReplicaNotReplicating',
          expr: 'min by (namespace, pod) ({__name__=~"mysql_agent_replication_(io|sql)_running"}) == 0',
          for: t.notReplicatingFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: '{{ $labels.pod }} does not replicate',
            description: `The IO or SQL thread of replica {{ $labels.pod }} has been stopped for ${t.notReplicatingFor}; it serves no reads (not ready) and falls behind.`,
            runbook: `Run \`${STATUS}\` and read the pod's /status: last_io_error / last_sql_error. IO thread: is the primary up, does the replication password match (a rotated one is taken at the pod's restart)? SQL thread stopped by an error: a duplicate key or a missing row means the replica diverged; re-clone it (delete its PersistentVolumeClaim and pod: init clones it again). Stopped by hand: START SLAVE.`,
          },
        },
        {
          alert: 'MySQLReplicationLagHigh',
          expr: `mysql_agent_replication_lag_seconds > ${t.lagSeconds}`,
          for: t.lagFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: '{{ $labels.pod }} is {{ $value | humanizeDuration }} behind the primary',
            description: `Replica {{ $labels.pod }} has been more than ${t.lagSeconds} s behind the primary for ${t.lagFor}.`,
            runbook: `Run \`${STATUS}\`: the BEHIND column counts the transactions it lacks. Usual causes: a long transaction or ALTER on the primary (it catches up once that is applied), a replica short of CPU or IO (compare its node's load), a backup being served from it (BACKUP column; XTRABACKUP_ARGS --throttle slows it down), MASTER_DELAY set on purpose.`,
          },
        },
        {
          alert: 'MySQLReplicaNotReady',
          expr: '(mysql_agent_ready == 0) and on (namespace, pod) (mysql_agent_pod_info{role="replica"} == 1)',
          for: t.replicaNotReadyFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: '{{ $labels.pod }} has not been ready for ' + t.replicaNotReadyFor,
            description: `Replica {{ $labels.pod }} is out of the read Service: its /readyz has answered 503 for ${t.replicaNotReadyFor}.`,
            runbook: `Run \`${STATUS}\`: the reason is in its problem line (not_ready_reason in /status): replication not set up (no or invalid info files: see the sidecar's log), a thread stopped, lag above READY_MAX_LAG, or the local server not answering.`,
          },
        },
        {
          alert: 'MySQLNoPrimaryReady',
          expr: 'count by (namespace) (mysql_agent_pod_info) unless on (namespace) ((mysql_agent_ready == 1) and on (namespace, pod) (mysql_agent_pod_info{role="primary"} == 1))',
          for: t.noPrimaryFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'No ready primary in {{ $labels.namespace }}',
            description: `No pod with role primary has been ready for ${t.noPrimaryFor}: writes fail.`,
            runbook: `Run \`kubectl exec -n {{ $labels.namespace }} <any pod> -c sidecar -- mysql-agent status\`. Ordinal 0 down: kubectl describe pod and its server's log. Up but not ready: its not_ready_reason (a primary rebuilt by PRIMARY_EMPTY_START=recover stays not ready until its GTID state is set; see README). An empty primary refused to start over replicas that hold data: see README, "Ordinal 0 with an empty datadir".`,
          },
        },
        {
          alert: 'MySQLAgentDown',
          expr: `up{job="${t.job}"} == 0`,
          for: t.agentDownFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'The agent of {{ $labels.pod }} does not answer',
            description: `/metrics of {{ $labels.pod }} has not answered for ${t.agentDownFor}: the sidecar is down or its pod is gone.`,
            runbook: 'kubectl get pod {{ $labels.pod }} -n {{ $labels.namespace }}, then kubectl logs {{ $labels.pod }} -c sidecar (one JSON event per line; the last says why it stopped). Without its agent a replica cannot be cloned from and ordinal 0 cannot be asked by a new replica.',
          },
        },
        {
          alert: 'MySQLBackupFailed',
          expr: `increase(mysql_agent_backups_failed_total[${t.backupFailedWindow}]) > 0`,
          for: '0m',
          labels: { severity: 'warning' },
          annotations: {
            summary: 'A backup served by {{ $labels.pod }} failed',
            description: `A backup or clone streamed from {{ $labels.pod }} failed or was cut off within the last ${t.backupFailedWindow}.`,
            runbook: 'kubectl logs {{ $labels.pod }} -c sidecar | grep \'"phase":"backup"\': the tool output and the failure. A client that went away (a clone moving on to another source, a pod deleted mid-clone) counts too; a tool error (privileges, disk, --lock-ddl timeout) needs a fix before the next clone.',
          },
        },
        {
          alert: 'MySQLBinlogArchiveLagging',
          expr: `mysql_agent_binlog_archive_lag_seconds > ${lagLimit}`,
          for: t.archiveLagFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: '{{ $labels.pod }} has not archived a transaction of {{ $value | humanizeDuration }} ago',
            description: `The oldest transaction of {{ $labels.pod }} not yet in the store committed more than ${lagLimit} s ago (BINLOG_ARCHIVE_INTERVAL ${t.archiveIntervalSeconds} s + ${t.archiveLagMarginSeconds} s) for ${t.archiveLagFor}: losing its volume now loses more than the recovery point objective.`,
            runbook: `${ARCHIVE}. The store unreachable (endpoint, DNS, an egress NetworkPolicy: manifests/README.md, "NetworkPolicy and the store"), its keys refused (the Secret mysql-backup-store), the bucket missing, or uploads slower than the writes (the pod's network). The sidecar retries every tick and catches up once the store answers; if the outage may outlast binlog_expire_logs_seconds, raise it before files are purged unarchived.`,
          },
        },
        {
          alert: 'MySQLBinlogArchiveGap',
          expr: 'mysql_agent_binlog_archive_gaps > 0',
          for: '0m',
          labels: { severity: 'critical' },
          annotations: {
            summary: '{{ $labels.pod }} purged binary logs before they were archived',
            description: 'Binary logs of {{ $labels.pod }} were purged before they reached the store: points in time inside the gap cannot be restored, and none after it until a full backup covers it.',
            runbook: `${ARCHIVE} (the error line names the oldest file left and the GTID state the gap ends at). Take a full backup now (kubectl create job -n {{ $labels.namespace }} --from=cronjob/mysql-backup mysql-backup-now): once it completes the gap closes and this resolves. Then keep binlog_expire_logs_seconds (expire_logs_days) far above the longest store outage, and find who ran PURGE BINARY LOGS.`,
          },
        },
        {
          alert: 'MySQLBinlogArchiveStalled',
          expr: `mysql_agent_binlog_archive_files_waiting > 0 unless on (namespace, pod) (time() - mysql_agent_binlog_archive_last_success_timestamp_seconds < ${seconds(t.archiveStalledAfter)})`,
          for: t.archiveStalledFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: '{{ $labels.pod }} has archived no binary log for ' + t.archiveStalledAfter,
            description: `Closed binary logs of {{ $labels.pod }} wait for the store, and none has reached it for ${t.archiveStalledAfter} (or none since its sidecar started), for ${t.archiveStalledFor}: each file the server purges now is a gap.`,
            runbook: `${ARCHIVE}: last_error says why each upload fails. Fix the store or its keys; raise binlog_expire_logs_seconds on the primary (SET GLOBAL) so that the waiting files outlast the fix. A sidecar that does not answer fires MySQLAgentDown instead.`,
          },
        },
      ],
    },
  ];
}

const HEADER = '# Generated by `npm run monitoring` from thresholds.yaml: edit that, not this.\n';

export function rulesFileText(t: Thresholds): string {
  return HEADER + stringify({ groups: alertGroups(t) }, { lineWidth: 0 });
}

export function prometheusRuleText(t: Thresholds): string {
  const doc = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'mysql-agent', labels: { app: 'mysql' } },
    spec: { groups: alertGroups(t) },
  };
  return HEADER + stringify(doc, { lineWidth: 0 });
}

interface Target {
  readonly expr: string;
  readonly legendFormat: string;
}

interface PanelSpec {
  readonly title: string;
  readonly unit: string;
  readonly targets: readonly Target[];
  readonly description: string;
}

/** The dashboard's panels: what `mysql-agent status` shows, over time. */
export const panels = (t: Thresholds): readonly PanelSpec[] => [
  { title: 'Ready', unit: 'bool', description: '1 while /readyz answers 200 (a replica: replicating, at most READY_MAX_LAG behind).', targets: [{ expr: 'mysql_agent_ready', legendFormat: '{{pod}}' }] },
  { title: 'Replication lag', unit: 's', description: 'Seconds_Behind_Master per replica; gaps are NULL (a thread stopped).', targets: [{ expr: 'mysql_agent_replication_lag_seconds', legendFormat: '{{pod}}' }] },
  {
    title: 'Replication threads',
    unit: 'bool',
    description: 'IO and SQL thread of each replica: 1 running, 0 stopped.',
    targets: [
      { expr: 'mysql_agent_replication_io_running', legendFormat: '{{pod}} IO' },
      { expr: 'mysql_agent_replication_sql_running', legendFormat: '{{pod}} SQL' },
    ],
  },
  { title: 'Agents up', unit: 'bool', description: 'Whether each sidecar\'s /metrics answers.', targets: [{ expr: `up{job="${t.job}"}`, legendFormat: '{{pod}}' }] },
  {
    title: 'Backups per hour',
    unit: 'short',
    description: 'Backups and clones streamed from each pod, by outcome.',
    targets: [
      { expr: 'increase(mysql_agent_backups_served_total[1h])', legendFormat: '{{pod}} served' },
      { expr: 'increase(mysql_agent_backups_failed_total[1h])', legendFormat: '{{pod}} failed' },
    ],
  },
  { title: 'Backup bytes', unit: 'Bps', description: 'Bytes per second sent by finished backups.', targets: [{ expr: 'rate(mysql_agent_backup_bytes_total[5m])', legendFormat: '{{pod}}' }] },
  {
    title: 'Backup duration',
    unit: 's',
    description: 'Mean duration of the backups finished in the last hour.',
    targets: [{ expr: 'increase(mysql_agent_backup_duration_seconds_sum[1h]) / increase(mysql_agent_backup_duration_seconds_count[1h])', legendFormat: '{{pod}}' }],
  },
  { title: 'Backup in progress', unit: 'bool', description: '1 while a pod serves a backup or clone.', targets: [{ expr: 'mysql_agent_backup_in_progress', legendFormat: '{{pod}}' }] },
  {
    title: 'Clone throughput',
    unit: 'Bps',
    description: 'Bytes per second of the clone that made each datadir, from init\'s record.',
    targets: [{ expr: 'mysql_agent_clone_bytes / mysql_agent_clone_stream_duration_seconds', legendFormat: '{{pod}}' }],
  },
  { title: 'Clone duration', unit: 's', description: 'First clone attempt to prepared clone (retries and prepare included).', targets: [{ expr: 'mysql_agent_clone_duration_seconds', legendFormat: '{{pod}}' }] },
];

export function dashboard(t: Thresholds): Record<string, unknown> {
  const datasource = { type: 'prometheus', uid: '${datasource}' };
  return {
    title: 'mysql-agent',
    uid: 'mysql-agent',
    description: 'The MySQL/MariaDB StatefulSet run by mysql-agent: what `mysql-agent status` shows, over time.',
    editable: true,
    schemaVersion: 39,
    tags: ['mysql', 'mysql-agent'],
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    templating: { list: [{ type: 'datasource', name: 'datasource', label: 'Prometheus', query: 'prometheus' }] },
    panels: panels(t).map((p, i) => ({
      id: i + 1,
      type: 'timeseries',
      title: p.title,
      description: p.description,
      datasource,
      gridPos: { x: (i % 2) * 12, y: Math.floor(i / 2) * 8, w: 12, h: 8 },
      fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
      targets: p.targets.map((target, j) => ({
        refId: String.fromCharCode(65 + j),
        datasource,
        expr: target.expr,
        legendFormat: target.legendFormat,
      })),
    })),
  };
}

export function dashboardText(t: Thresholds): string {
  return `${JSON.stringify(dashboard(t), null, 2)}\n`;
}

/** Every file the generator writes, path → text. */
export function generated(t: Thresholds = readThresholds()): Record<string, string> {
  return { [FILES.prometheusRule]: prometheusRuleText(t), [FILES.rules]: rulesFileText(t), [FILES.dashboard]: dashboardText(t) };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  for (const [path, text] of Object.entries(generated())) {
    writeFileSync(path, text);
    console.log(`wrote ${path}`);
  }
}
