/**
 * The alert rules through Prometheus's own tools (Debian's `prometheus` package): `promtool check
 * rules` on the plain rules file and on the PrometheusRule's groups, and `promtool test rules`
 * with input series that make each alert fire and then resolve, on the committed rules file.
 * The expected annotations are the rules' templates with the labels (and $value) filled in, so a
 * template that does not render as written fails here.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type AlertRule, FILES, alertGroups, readThresholds } from './monitoring.js';

const execFileP = promisify(execFile);
const promtool = (args: string[]) => execFileP('promtool', args, { maxBuffer: 4 << 20 });
/** What `promtool test rules` says when the tests fail, or 'passed'. */
const failureOf = (tests: string) =>
  promtool(['test', 'rules', tests]).then(
    () => 'passed',
    (err: { stdout: string; stderr: string }) => err.stdout + err.stderr,
  );

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'promtool-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const RULES = Object.fromEntries(alertGroups(readThresholds())[0]!.rules.map((r) => [r.alert, r]));

/** The rule's annotation templates with `{{ $labels.x }}` and `{{ $value | humanizeDuration }}` filled in. */
function annotations(rule: AlertRule, labels: Record<string, string>, value?: string): Record<string, string> {
  const fill = (template: string) =>
    template.replace(/\{\{ ([^}]+) \}\}/g, (all, inner: string) => {
      const label = /^\$labels\.(\w+)$/.exec(inner);
      if (label) return labels[label[1]!] ?? '';
      if (inner === '$value | humanizeDuration' && value !== undefined) return value;
      throw new Error(`${rule.alert}: the test does not fill ${all}`);
    });
  return Object.fromEntries(Object.entries(rule.annotations).map(([k, v]) => [k, fill(v)]));
}

interface Expected {
  readonly labels: Record<string, string>;
  /** $value as humanizeDuration prints it, for templates that show it. */
  readonly value?: string;
}

/** One alert's story: its input series, and at each evaluation time the alerts that fire (none: pending or resolved). */
interface Story {
  readonly alert: string;
  readonly what: string;
  readonly series: Record<string, string>;
  readonly at: readonly (readonly [string, readonly Expected[]])[];
}

const db = { namespace: 'db' };
const S = (name: string, labels: Record<string, string>) => `${name}{${Object.entries({ ...db, ...labels }).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
const replica = (pod: string) => ({ pod, source_host: 'mysql-0.mysql' });

// Default thresholds (thresholds.yaml); series are one sample a minute from 0m.
const STORIES: readonly Story[] = [
  {
    alert: 'MySQLReplicaNotReplicating',
    what: "mysql-1's IO thread stops at 2m and restarts at 7m; mysql-2's SQL thread stops at 3m for good",
    series: {
      [S('mysql_agent_replication_io_running', replica('mysql-1'))]: '1 1 0 0 0 0 0 1 1 1',
      [S('mysql_agent_replication_sql_running', replica('mysql-1'))]: '1x9',
      [S('mysql_agent_replication_io_running', replica('mysql-2'))]: '1x9',
      [S('mysql_agent_replication_sql_running', replica('mysql-2'))]: '1 1 1 0x7',
    },
    at: [
      ['3m', []], // mysql-1 pending for 1m of its 2m
      ['4m', [{ labels: { pod: 'mysql-1' } }]],
      ['5m', [{ labels: { pod: 'mysql-1' } }, { labels: { pod: 'mysql-2' } }]],
      ['7m', [{ labels: { pod: 'mysql-2' } }]],
    ],
  },
  {
    alert: 'MySQLReplicationLagHigh',
    what: 'mysql-1 is above 60 s from 2m to 8m, then catches up',
    series: { [S('mysql_agent_replication_lag_seconds', replica('mysql-1'))]: '0 10 70 80 90 100 110 120 130 20 10' },
    at: [
      ['6m', []],
      ['7m', [{ labels: replica('mysql-1'), value: '2m 0s' }]],
      ['9m', []],
    ],
  },
  {
    alert: 'MySQLReplicaNotReady',
    what: 'mysql-1 (a replica) and mysql-0 (the primary) are not ready from 1m to 12m; only the replica counts',
    series: {
      [S('mysql_agent_ready', { pod: 'mysql-0' })]: '1 0x11 1',
      [S('mysql_agent_pod_info', { pod: 'mysql-0', role: 'primary', ordinal: '0' })]: '1x14',
      [S('mysql_agent_ready', { pod: 'mysql-1' })]: '1 0x11 1',
      [S('mysql_agent_pod_info', { pod: 'mysql-1', role: 'replica', ordinal: '1' })]: '1x14',
    },
    at: [
      ['10m', []],
      ['11m', [{ labels: { pod: 'mysql-1' } }]],
      ['13m', []],
    ],
  },
  {
    alert: 'MySQLNoPrimaryReady',
    what: 'the primary is not ready from 2m to 4m',
    series: {
      [S('mysql_agent_ready', { pod: 'mysql-0' })]: '1 1 0 0 0 1 1',
      [S('mysql_agent_pod_info', { pod: 'mysql-0', role: 'primary', ordinal: '0' })]: '1x7',
      [S('mysql_agent_ready', { pod: 'mysql-1' })]: '1x7',
      [S('mysql_agent_pod_info', { pod: 'mysql-1', role: 'replica', ordinal: '1' })]: '1x7',
    },
    at: [
      ['2m', []],
      ['3m', [{ labels: {} }]],
      ['5m', []],
    ],
  },
  {
    alert: 'MySQLNoPrimaryReady',
    what: "the primary's sidecar stops answering at 2m (its series go stale) while a replica's still answers",
    series: {
      [S('mysql_agent_ready', { pod: 'mysql-0' })]: '1 1 stale',
      [S('mysql_agent_pod_info', { pod: 'mysql-0', role: 'primary', ordinal: '0' })]: '1 1 stale',
      [S('mysql_agent_ready', { pod: 'mysql-1' })]: '1x7',
      [S('mysql_agent_pod_info', { pod: 'mysql-1', role: 'replica', ordinal: '1' })]: '1x7',
    },
    at: [
      ['1m', []],
      ['3m', [{ labels: {} }]],
    ],
  },
  {
    alert: 'MySQLAgentDown',
    what: "mysql-2's /metrics does not answer from 2m to 7m",
    series: { [S('up', { job: 'mysql', pod: 'mysql-2' })]: '1 1 0x5 1 1' },
    at: [
      ['6m', []],
      ['7m', [{ labels: { job: 'mysql', pod: 'mysql-2' } }]],
      ['8m', []],
    ],
  },
  {
    alert: 'MySQLBackupFailed',
    what: 'a backup from mysql-1 fails at 2m; an hour later it is forgotten',
    series: { [S('mysql_agent_backups_failed_total', { pod: 'mysql-1' })]: '0 0 1x70' },
    at: [
      ['1m', []],
      ['2m', [{ labels: { pod: 'mysql-1' } }]],
      ['61m', [{ labels: { pod: 'mysql-1' } }]],
      ['63m', []],
    ],
  },
  {
    alert: 'MySQLBinlogArchiveLagging',
    what: "mysql-0's archive lag saws up to the interval as it should, then the store stops taking files at 5m and it climbs past 90 s until a file lands at 12m",
    series: { [S('mysql_agent_binlog_archive_lag_seconds', { pod: 'mysql-0' })]: '0 30 60 10 40 70 130 190 250 310 370 430 20 0' },
    at: [
      ['5m', []],
      ['8m', []], // above 90 s for 2m of its 3m
      ['9m', [{ labels: { pod: 'mysql-0' }, value: '5m 10s' }]],
      ['11m', [{ labels: { pod: 'mysql-0' }, value: '7m 10s' }]],
      ['12m', []],
    ],
  },
  {
    alert: 'MySQLBinlogArchiveLagging',
    what: 'a steady write load: every minute the lag reaches the interval plus a tick and an upload (70 s), and drops to 0 when the file lands',
    series: { [S('mysql_agent_binlog_archive_lag_seconds', { pod: 'mysql-0' })]: '0 70 0 70 0 70 0 70 0 70 0 70 0 70 0 70 0 70 0 70 0' },
    at: [
      ['5m', []],
      ['10m', []],
      ['20m', []],
    ],
  },
  {
    alert: 'MySQLBinlogArchiveGap',
    what: 'a binary log of mysql-0 is purged before it is archived at 2m; the backup at 5m covers it',
    series: { [S('mysql_agent_binlog_archive_gaps', { pod: 'mysql-0' })]: '0 0 1 1 1 0 0' },
    at: [
      ['1m', []],
      ['2m', [{ labels: { pod: 'mysql-0' } }]],
      ['4m', [{ labels: { pod: 'mysql-0' } }]],
      ['5m', []],
    ],
  },
  {
    alert: 'MySQLBinlogArchiveGap',
    what: 'no binary log of mysql-0 is ever purged before it is archived',
    series: { [S('mysql_agent_binlog_archive_gaps', { pod: 'mysql-0' })]: '0x30' },
    at: [
      ['1m', []],
      ['30m', []],
    ],
  },
  {
    alert: 'MySQLBinlogArchiveStalled',
    what: 'mysql-0 archives a file a minute until 5m, then files wait and none lands until 45m',
    series: {
      // Unix seconds: the evaluation clock of a test starts at 0.
      [S('mysql_agent_binlog_archive_last_success_timestamp_seconds', { pod: 'mysql-0' })]: '0 60 120 180 240 300 300x38 2700x5',
      [S('mysql_agent_binlog_archive_files_waiting', { pod: 'mysql-0' })]: '0x5 1 2 3x42',
    },
    at: [
      ['34m', []], // the last success 29m ago
      ['39m', []], // 30m ago since 35m: pending for 4m of its 5m
      ['40m', [{ labels: { pod: 'mysql-0' } }]],
      ['44m', [{ labels: { pod: 'mysql-0' } }]],
      ['45m', []],
    ],
  },
  {
    alert: 'MySQLBinlogArchiveStalled',
    what: "mysql-0's sidecar starts with two files waiting and never archives one (no success at all: the gauge is absent)",
    series: { [S('mysql_agent_binlog_archive_files_waiting', { pod: 'mysql-0' })]: '2x10' },
    at: [
      ['4m', []],
      ['5m', [{ labels: { pod: 'mysql-0' } }]],
    ],
  },
  {
    alert: 'MySQLBinlogArchiveStalled',
    what: 'a backlog that is worked off (a file lands every minute while three wait), and a quiet primary whose last file landed long ago with nothing waiting',
    series: {
      [S('mysql_agent_binlog_archive_last_success_timestamp_seconds', { pod: 'mysql-0' })]: '0+60x50',
      [S('mysql_agent_binlog_archive_files_waiting', { pod: 'mysql-0' })]: '3x50',
      [S('mysql_agent_binlog_archive_last_success_timestamp_seconds', { pod: 'mysql-9' })]: '0x50',
      [S('mysql_agent_binlog_archive_files_waiting', { pod: 'mysql-9' })]: '0x50',
    },
    at: [
      ['10m', []],
      ['50m', []],
    ],
  },
];

function unitTests(rulesFile: string): string {
  return stringify({
    rule_files: [rulesFile],
    evaluation_interval: '1m',
    tests: STORIES.map((story) => {
      const rule = RULES[story.alert]!;
      return {
        name: `${story.alert}: ${story.what}`,
        interval: '1m',
        input_series: Object.entries(story.series).map(([series, values]) => ({ series, values })),
        alert_rule_test: story.at.map(([time, alerts]) => ({
          eval_time: time,
          alertname: story.alert,
          exp_alerts: alerts.map((a) => {
            const labels = { ...db, ...a.labels, ...rule.labels };
            return { exp_labels: labels, exp_annotations: annotations(rule, labels, a.value) };
          }),
        })),
      };
    }),
  });
}

describe('promtool', () => {
  it('check rules: the plain rules file and the PrometheusRule\'s groups', async () => {
    const plain = await promtool(['check', 'rules', FILES.rules]);
    expect(plain.stdout).toContain(`SUCCESS: ${Object.keys(RULES).length} rules found`);
    const groups = join(dir, 'from-prometheus-rule.yml');
    await writeFile(groups, stringify({ groups: (parse(await readFile(FILES.prometheusRule, 'utf8')) as { spec: { groups: unknown } }).spec.groups }));
    expect((await promtool(['check', 'rules', groups])).stdout).toContain('SUCCESS');
  });

  it('test rules: every alert fires on its series and resolves', async () => {
    expect(new Set(STORIES.map((s) => s.alert))).toEqual(new Set(Object.keys(RULES)));
    const tests = join(dir, 'alerts.test.yml');
    await writeFile(tests, unitTests(FILES.rules));
    const { stdout } = await promtool(['test', 'rules', tests]).catch((err: { stdout: string; stderr: string }) => {
      throw new Error(`promtool test rules failed:\n${err.stdout}${err.stderr}`);
    });
    expect(stdout).toContain('SUCCESS');
  });

  // Each rule's stories see it fire and see it quiet: a rule that never fires, or fires where it
  // should not, fails them.
  it.each(Object.keys(RULES))('test rules fails for %s when it never fires, and when it fires all along', async (alert) => {
    const wraps = { never: (e: string) => `(${e}) and on () (vector(0) > 1)`, always: (e: string) => `(${e}) or vector(1)` };
    for (const [how, wrap] of Object.entries(wraps)) {
      const groups = alertGroups(readThresholds()).map((g) => ({ ...g, rules: g.rules.map((r) => (r.alert === alert ? { ...r, expr: wrap(r.expr) } : r)) }));
      const rules = join(dir, `${alert}-${how}.rules.yml`);
      await writeFile(rules, stringify({ groups }, { lineWidth: 0 }));
      const tests = join(dir, `${alert}-${how}.test.yml`);
      await writeFile(tests, unitTests(rules));
      expect(await failureOf(tests), `${alert} firing ${how}`).toMatch(new RegExp(`FAILED:[\\s\\S]*alertname: ${alert},`));
    }
  });

  it('test rules fails when an alert does not fire as a story says (the test can fail)', async () => {
    const tests = join(dir, 'wrong.test.yml');
    await writeFile(tests, unitTests(FILES.rules).replace("eval_time: 4m", 'eval_time: 3m30s'));
    expect(await failureOf(tests)).toMatch(/FAILED:[\s\S]*alertname: MySQLReplicaNotReplicating, time: 3m30s/);
  });
});
