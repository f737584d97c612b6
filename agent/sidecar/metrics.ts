/**
 * GET /metrics: the sidecar's Prometheus text (prom-client). Names and meanings are listed in
 * the README. Replication gauges come from the sidecar's last reading of the server (no query
 * per scrape), the text is rendered at most once a second; backup counters count from the
 * sidecar's start; the clone gauges come from init's durable record.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BackupService } from './backup.js';
import type { CloneRecord } from '../core/records.js';
import type { Role } from '../core/topology.js';
import type { ReplicaStatus } from '../mysql/db.js';
import type { ArchiveState } from './archive.js';

export const PREFIX = 'mysql_agent_';
/** A rendered text serves every scrape for this long. */
export const RENDER_MS = 1000;

/** What the metrics are read from; the sidecar supplies it. */
export interface MetricSources {
  /** null on the primary, or when the server cannot be asked. */
  replication(): Promise<ReplicaStatus | null>;
  ready(): Promise<boolean>;
  /** The running backup's bytes so far and the estimate it announced; null when none runs. */
  backupInProgress(): { readonly bytes: number; readonly estimatedBytes: number | null } | null;
  /** The clone that made this datadir (init's record), or null. */
  readonly clone: CloneRecord | null;
  /** Who this pod is: rules tell the primary from the replicas by it, not by its name. */
  readonly pod: { readonly role: Role; readonly ordinal: number };
  /** The binary log archive's state; null (its metrics absent) where it does not run. */
  archive?(): ArchiveState | null;
}

interface Snapshot {
  readonly replication: ReplicaStatus | null;
  readonly ready: boolean;
}

const bool = (v: boolean) => (v ? 1 : 0);

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly served: Counter;
  private readonly failed: Counter;
  private readonly bytes: Counter;
  private readonly duration: Histogram;
  private snapshot: Promise<Snapshot> | null = null;
  private rendered: { at: number; text: Promise<string> } | null = null;

  constructor(private readonly sources: MetricSources) {
    const registers = [this.registry];
    const take = () => this.take();
    const replicaGauge = (name: string, help: string, value: (r: ReplicaStatus) => number | null) =>
      new Gauge({
        name: PREFIX + name,
        help,
        labelNames: ['source_host'],
        registers,
        async collect() {
          this.reset();
          const r = (await take()).replication;
          const v = r?.configured ? value(r) : null;
          if (r && v !== null) this.set({ source_host: r.sourceHost ?? '' }, v);
        },
      });
    replicaGauge('replication_io_running', 'Replica IO thread running (1) or not (0); absent on the primary.', (r) => bool(r.ioRunning === 'Yes'));
    replicaGauge('replication_sql_running', 'Replica SQL thread running (1) or not (0); absent on the primary.', (r) => bool(r.sqlRunning === 'Yes'));
    replicaGauge('replication_lag_seconds', 'Seconds_Behind_Master of the replica; absent when NULL (SQL thread stopped, not connected) and on the primary.', (r) => r.secondsBehind);
    new Gauge({
      name: `${PREFIX}ready`,
      help: '1 when /readyz answers 200, else 0.',
      registers,
      async collect() {
        this.set(bool((await take()).ready));
      },
    });
    this.served = new Counter({ name: `${PREFIX}backups_served_total`, help: 'Backups streamed to the end with X-Backup-Status: Success since the sidecar started.', registers });
    this.failed = new Counter({ name: `${PREFIX}backups_failed_total`, help: 'Backups that failed or were cut off since the sidecar started.', registers });
    this.bytes = new Counter({ name: `${PREFIX}backup_bytes_total`, help: 'Bytes sent by finished backups (served or failed) since the sidecar started.', registers });
    this.duration = new Histogram({
      name: `${PREFIX}backup_duration_seconds`,
      help: 'Seconds from the start to the end of each finished backup (served or failed) since the sidecar started.',
      buckets: [1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 21600],
      registers,
    });
    new Gauge({ name: `${PREFIX}pod_info`, help: "Always 1, labelled with this pod's role and ordinal.", labelNames: ['role', 'ordinal'], registers }).set(
      { role: sources.pod.role, ordinal: String(sources.pod.ordinal) },
      1,
    );
    const inProgress = () => this.sources.backupInProgress();
    new Gauge({
      name: `${PREFIX}backup_in_progress`,
      help: '1 while a backup is being served, else 0.',
      registers,
      collect() {
        this.set(bool(inProgress() !== null));
      },
    });
    // A dashboard draws the running backup's progress from these two; both 0 between backups.
    const running = (name: string, help: string, value: (p: NonNullable<ReturnType<MetricSources['backupInProgress']>>) => number | null) =>
      new Gauge({
        name: PREFIX + name,
        help,
        registers,
        collect() {
          const p = inProgress();
          this.set((p === null ? null : value(p)) ?? 0);
        },
      });
    running('backup_running_bytes', 'Bytes the running backup has sent so far (before compression); 0 when none runs.', (p) => p.bytes);
    running('backup_running_estimated_bytes', 'The size the running backup announced (X-Backup-Estimated-Bytes); 0 when none runs or it is unknown.', (p) => p.estimatedBytes);

    // The archive's state is the archiver's own, read at each render.
    const archive = () => this.sources.archive?.() ?? null;
    const archiveGauge = (name: string, help: string, value: (a: ArchiveState) => number | null) =>
      new Gauge({
        name: PREFIX + name,
        help,
        registers,
        collect() {
          this.reset();
          const a = archive();
          const v = a ? value(a) : null;
          if (v !== null) this.set(v);
        },
      });
    archiveGauge('binlog_archive_lag_seconds', 'Seconds since the oldest transaction not yet in the store was committed (0: all archived); absent without the archive.', (a) => a.lag_seconds);
    archiveGauge('binlog_archive_files_waiting', 'Closed binary logs on the server not yet in the store.', (a) => a.files_waiting);
    archiveGauge('binlog_archive_bytes', 'Bytes of binary logs archived since the sidecar started.', (a) => a.bytes_archived);
    archiveGauge('binlog_archive_last_success_timestamp_seconds', 'When the last binary log reached the store (Unix time); absent before the first.', (a) =>
      a.last_success_at === null ? null : Date.parse(a.last_success_at) / 1000,
    );
    archiveGauge('binlog_archive_gaps', 'Binary logs purged before they were archived and not yet covered by a full backup.', (a) => a.gaps.length);

    // The clone happened before this process started and the datadir cannot change under it:
    // constant gauges, present only when init recorded a clone.
    const c = sources.clone;
    if (c !== null) {
      const constant = (name: string, help: string, value: number) => new Gauge({ name: PREFIX + name, help, registers }).set(value);
      constant('clone_bytes', 'Bytes streamed by the clone that made this datadir.', c.bytes);
      constant('clone_duration_seconds', 'Seconds from the first clone attempt to the prepared clone (streaming, retries, prepare).', c.duration_ms / 1000);
      constant('clone_stream_duration_seconds', 'Seconds the accepted clone attempt spent streaming.', c.stream_duration_ms / 1000);
      constant('clone_timestamp_seconds', 'When the clone was prepared (Unix time).', Date.parse(c.finished_at) / 1000);
      new Gauge({
        name: `${PREFIX}clone_source_info`,
        help: 'Always 1, labelled with the peer the datadir was cloned from, its ordinal and the CLONE_SOURCE choice.',
        labelNames: ['peer', 'ordinal', 'choice'],
        registers,
      }).set({ peer: c.source.host, ordinal: c.source.ordinal === null ? '' : String(c.source.ordinal), choice: c.source.choice }, 1);
    }
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }

  /** One reading of the sources per render (the gauges collect concurrently). */
  private take(): Promise<Snapshot> {
    this.snapshot ??= (async () => {
      const [replication, ready] = await Promise.all([this.sources.replication().catch(() => null), this.sources.ready().catch(() => false)]);
      return { replication, ready };
    })();
    return this.snapshot;
  }

  backupFinished(failure: string | null, bytes: number, seconds: number): void {
    if (failure === null) this.served.inc();
    else this.failed.inc();
    this.bytes.inc(bytes);
    this.duration.observe(seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The text of the last RENDER_MS at most: a scrape is not cheap (the default metrics read
   * /proc, the open descriptors among them), and /metrics is open to every pod, so a flood of
   * scrapes renders once per interval.
   */
  render(): Promise<string> {
    const now = Date.now();
    if (this.rendered === null || now - this.rendered.at > RENDER_MS) {
      this.snapshot = null;
      this.rendered = { at: now, text: this.registry.metrics() };
    }
    return this.rendered.text;
  }
}

/** The backup service, counting each finished backup into the metrics. */
export class CountedBackupService extends BackupService {
  private metrics: AgentMetrics | null = null;

  countInto(metrics: AgentMetrics): this {
    this.metrics = metrics;
    return this;
  }

  override async start(...args: Parameters<BackupService['start']>): ReturnType<BackupService['start']> {
    const run = await super.start(...args);
    if (run !== 'busy') {
      void run.finished.then((failure) => {
        const last = this.last;
        const seconds = last?.finished_at ? (Date.parse(last.finished_at) - Date.parse(last.started_at)) / 1000 : 0;
        this.metrics?.backupFinished(failure, last?.bytes ?? 0, seconds);
      });
    }
    return run;
  }
}
