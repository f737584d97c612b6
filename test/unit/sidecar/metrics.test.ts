import { describe, expect, it } from 'vitest';
import type { CloneRecord } from '../../../agent/core/records.js';
import type { ReplicaStatus } from '../../../agent/mysql/db.js';
import { AgentMetrics, type MetricSources, RENDER_MS } from '../../../agent/sidecar/metrics.js';
import { parseExposition, valueOf } from '../../prom-text.js';

const replicating: ReplicaStatus = {
  configured: true,
  sourceHost: 'mysql-0.mysql',
  ioRunning: 'Yes',
  sqlRunning: 'Yes',
  secondsBehind: 4,
  lastIoError: null,
  lastSqlError: null,
  usingGtid: 'Slave_Pos',
  usesGtid: true,
};
const clone: CloneRecord = {
  source: { host: 'mysql-1.mysql', port: 3307, ordinal: 1, choice: 'auto', why: 'replica 0 s behind, not serving a backup' },
  bytes: 17_000_000,
  stream_duration_ms: 2500,
  duration_ms: 4000,
  finished_at: '2026-11-25T11:00:00.000Z',
  skipped: [],
};

function metrics(over: Partial<MetricSources> = {}): { m: AgentMetrics; state: { replication: ReplicaStatus | null; busy: boolean; scrapes: number } } {
  const state = { replication: replicating as ReplicaStatus | null, busy: false, scrapes: 0 };
  const m = new AgentMetrics({
    replication: async () => {
      state.scrapes++;
      return state.replication;
    },
    ready: async () => true,
    backupInProgress: () => (state.busy ? { bytes: 4_000_000, estimatedBytes: 10_000_000 } : null),
    clone: null,
    pod: { role: 'replica', ordinal: 2 },
    ...over,
  });
  return { m, state };
}

describe('AgentMetrics', () => {
  it('renders valid Prometheus text with every documented family', async () => {
    const { m } = metrics({ clone });
    const e = parseExposition(await m.render());
    for (const name of [
      'mysql_agent_ready',
      'mysql_agent_replication_io_running',
      'mysql_agent_replication_sql_running',
      'mysql_agent_replication_lag_seconds',
      'mysql_agent_backups_served_total',
      'mysql_agent_backups_failed_total',
      'mysql_agent_backup_bytes_total',
      'mysql_agent_backup_in_progress',
      'mysql_agent_clone_bytes',
      'mysql_agent_clone_duration_seconds',
      'mysql_agent_clone_stream_duration_seconds',
      'mysql_agent_clone_timestamp_seconds',
      'mysql_agent_clone_source_info',
      'mysql_agent_pod_info',
      'mysql_agent_backup_duration_seconds',
      'mysql_agent_process_resident_memory_bytes',
      'mysql_agent_process_cpu_seconds_total',
    ]) {
      expect(e.types[name.replace(/_total$/, '')] ?? e.types[name], name).toBeDefined();
    }
    expect(m.contentType).toContain('text/plain');
  });

  it('reports the replica threads and lag, labelled with the source', async () => {
    const { m, state } = metrics();
    const e = parseExposition(await m.render());
    expect(valueOf(e, 'mysql_agent_replication_io_running', { source_host: 'mysql-0.mysql' })).toBe(1);
    expect(valueOf(e, 'mysql_agent_replication_sql_running')).toBe(1);
    expect(valueOf(e, 'mysql_agent_replication_lag_seconds')).toBe(4);
    expect(valueOf(e, 'mysql_agent_ready')).toBe(1);
    expect(state.scrapes).toBe(1); // one SHOW SLAVE STATUS per scrape
  });

  it('drops the lag when Seconds_Behind_Master is NULL and shows the stopped thread as 0', async () => {
    const { m, state } = metrics();
    await m.render();
    state.replication = { ...replicating, sqlRunning: 'No', secondsBehind: null };
    // A rendered text serves every scrape for RENDER_MS.
    expect(valueOf(parseExposition(await m.render()), 'mysql_agent_replication_sql_running')).toBe(1);
    await new Promise((r) => setTimeout(r, RENDER_MS + 100));
    const e = parseExposition(await m.render());
    expect(valueOf(e, 'mysql_agent_replication_sql_running')).toBe(0);
    expect(valueOf(e, 'mysql_agent_replication_lag_seconds')).toBeUndefined();
  });

  it('has no replication samples on the primary and no clone samples without a clone', async () => {
    const { m, state } = metrics();
    state.replication = null;
    const e = parseExposition(await m.render());
    expect(e.samples.filter((s) => s.name.startsWith('mysql_agent_replication_'))).toEqual([]);
    expect(e.samples.filter((s) => s.name.startsWith('mysql_agent_clone_'))).toEqual([]);
  });

  it('counts finished backups by outcome and their bytes; shows one in progress', async () => {
    const { m, state } = metrics();
    m.backupFinished(null, 1000, 3);
    m.backupFinished('client disconnected', 300, 0.5);
    m.backupFinished(null, 2000, 40);
    state.busy = true;
    const e = parseExposition(await m.render());
    expect(valueOf(e, 'mysql_agent_backups_served_total')).toBe(2);
    expect(valueOf(e, 'mysql_agent_backups_failed_total')).toBe(1);
    expect(valueOf(e, 'mysql_agent_backup_bytes_total')).toBe(3300);
    expect(valueOf(e, 'mysql_agent_backup_in_progress')).toBe(1);
    expect(valueOf(e, 'mysql_agent_backup_running_bytes')).toBe(4_000_000);
    expect(valueOf(e, 'mysql_agent_backup_running_estimated_bytes')).toBe(10_000_000);
    expect(valueOf(e, 'mysql_agent_backup_duration_seconds_count')).toBe(3);
    expect(valueOf(e, 'mysql_agent_backup_duration_seconds_sum')).toBe(43.5);
    expect(valueOf(e, 'mysql_agent_backup_duration_seconds_bucket', { le: '5' })).toBe(2);
  });

  it('sets the running backup\'s bytes and estimate to 0 once it ends', async () => {
    const { m, state } = metrics();
    state.busy = true;
    await m.render();
    state.busy = false;
    // The next scrape after the rendered text of RENDER_MS expires.
    await new Promise((r) => setTimeout(r, RENDER_MS + 100));
    const e = parseExposition(await m.render());
    expect(valueOf(e, 'mysql_agent_backup_in_progress')).toBe(0);
    expect(valueOf(e, 'mysql_agent_backup_running_bytes')).toBe(0);
    expect(valueOf(e, 'mysql_agent_backup_running_estimated_bytes')).toBe(0);
  });

  it('says which role and ordinal this pod has, for rules that need the primary', async () => {
    const e = parseExposition(await metrics({ pod: { role: 'primary', ordinal: 0 } }).m.render());
    expect(valueOf(e, 'mysql_agent_pod_info', { role: 'primary', ordinal: '0' })).toBe(1);
  });

  it('shows the recorded clone: bytes, durations, time and source', async () => {
    const e = parseExposition(await metrics({ clone }).m.render());
    expect(valueOf(e, 'mysql_agent_clone_bytes')).toBe(17_000_000);
    expect(valueOf(e, 'mysql_agent_clone_duration_seconds')).toBe(4);
    expect(valueOf(e, 'mysql_agent_clone_stream_duration_seconds')).toBe(2.5);
    expect(valueOf(e, 'mysql_agent_clone_timestamp_seconds')).toBe(Date.parse('2026-11-25T11:00:00.000Z') / 1000);
    expect(valueOf(e, 'mysql_agent_clone_source_info', { peer: 'mysql-1.mysql', ordinal: '1', choice: 'auto' })).toBe(1);
  });
});
