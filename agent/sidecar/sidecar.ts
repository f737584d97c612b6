/**
 * agent/sidecar/ is the sidecar: the HTTP surface, serving backups, replication set up once,
 * the rebuilt primary's continuity and the metrics.
 *
 * `mysql-agent sidecar`: serves HTTP at once (health must answer while the server starts),
 * waits for the local server, starts replication once from the clone, and reports readiness
 * and status from the server's own replication state. SIGTERM (the `signal`) ends a running
 * backup, closes the listener and the MySQL pool.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { type CloneRecord, PRIMARY_START_RECORD, type RecoveryRecord, readCloneRecord, readJsonRecord, readRecoveryRecord } from '../core/records.js';
import { type Db, type ReplicaStatus, createDb, readReplicaStatus, readServerFacts, readServerStartedAt, waitForServer } from '../mysql/db.js';
import { type ServerFacts, replicationSource } from '../mysql/replication-sql.js';
import type { BackupService } from './backup.js';
import { type Readiness, type StatusSource, buildHttpServer } from './http-server.js';
import { AgentMetrics, CountedBackupService } from './metrics.js';
import { ensurePrimaryContinuity } from './primary-recovery.js';
import { type SetupOutcome, ensureReplication, reissueRefusedCredentials, startIfStopped } from './replication.js';
import type { SidecarConfig } from './settings.js';

const SETUP_RETRY_MS = 5000;
const WATCH_MS = 5000;
/** A server start this much later than the one seen before is a restart (Uptime has whole seconds). */
const RESTART_SLACK_MS = 2500;

type SetupState = { readonly state: 'waiting'; readonly reason: string } | SetupOutcome;

function setupReason(setup: SetupState): string {
  return setup.state === 'configured' ? 'replication configured' : setup.reason;
}

/**
 * The local server as last read: everything /readyz, /status and /metrics need from it, read by
 * one refresh every READING_MS, never by a request, so a flood of unauthenticated requests costs
 * the server nothing.
 */
interface ServerReading {
  /** When this reading was complete (ms since the epoch). */
  readonly at: number;
  /** Why the server did not answer `SELECT 1`, or null. */
  readonly unanswered: string | null;
  /** The replica's SHOW SLAVE STATUS; null on the primary or before the server is known. */
  readonly replica: ReplicaStatus | null;
  readonly replicaError: string | null;
  readonly gtidExecuted: string | null;
  readonly holdsData: boolean;
  readonly recovery: RecoveryRecord | null;
}

const READING_MS = 1000;
/**
 * Connections the kernel may hold for accepting (capped by net.core.somaxconn): a burst of
 * them must not overflow the queue, or the kubelet's probe waits for SYN retransmits (1 s, 3 s,
 * 7 s) while the agent is idle. Node's default is 511.
 */
const LISTEN_BACKLOG = 4096;
/** Each query of a reading; a hung server makes the reading say so instead of waiting. */
const READING_QUERY_TIMEOUT_MS = 5000;
/** A reading older than this (a refresh stuck behind a busy pool) makes the pod not ready. */
const READING_STALE_MS = 15_000;

/** Live view of this pod for /readyz and /status, from the last reading and the setup's state. */
class PodStatus implements StatusSource {
  setup: SetupState = { state: 'waiting', reason: 'waiting for the local server' };
  server: ServerFacts | null = null;
  private readingBegun = 0;
  /** Requests waiting for a reading begun after they arrived; taken by the next refresh to begin. */
  private waiting: PromiseWithResolvers<void> | null = null;
  reading: ServerReading = { at: Date.now(), unanswered: 'not read yet', replica: null, replicaError: null, gtidExecuted: null, holdsData: false, recovery: null };

  constructor(
    private readonly config: SidecarConfig,
    private readonly db: Db,
    private readonly backups: BackupService,
    /** init's records, read once at start: the clone that made this datadir, ordinal 0's start decision. */
    private readonly records: { readonly clone: CloneRecord | null; readonly primaryStart: unknown; readonly recoveryPending: boolean },
  ) {}

  /** Resolves once a reading begun after this call is held, or after `timeoutMs`; every caller until then shares that reading. */
  fresh(timeoutMs: number): Promise<void> {
    this.waiting ??= Promise.withResolvers<void>();
    return Promise.race([this.waiting.promise, delay(timeoutMs, undefined, { ref: false })]);
  }

  /** Takes a new reading; never throws (what failed is in the reading). A reading begun before the one held is dropped. */
  async refresh(): Promise<void> {
    const waiting = this.waiting;
    this.waiting = null;
    try {
      await this.read();
    } finally {
      waiting?.resolve();
    }
  }

  private async read(): Promise<void> {
    const begun = Date.now();
    const query = (sql: string) => this.db.query(sql, READING_QUERY_TIMEOUT_MS);
    let unanswered: string | null = null;
    try {
      await query('SELECT 1');
    } catch (err) {
      unanswered = errorMessage(err);
    }
    let replica: ReplicaStatus | null = null;
    let replicaError: string | null = null;
    let gtidExecuted: string | null = null;
    const server = this.server;
    if (unanswered === null && server !== null) {
      if (this.config.role === 'replica') {
        try {
          replica = await readReplicaStatus(this.db, server.version, READING_QUERY_TIMEOUT_MS);
        } catch (err) {
          replicaError = errorMessage(err);
        }
      }
      // The executed GTID state other pods compare: a MariaDB replica's gtid_slave_pos, a
      // MariaDB primary's gtid_binlog_pos, MySQL's gtid_executed.
      const variable = server.version.flavor === 'mysql' ? 'gtid_executed' : this.config.role === 'replica' ? 'gtid_slave_pos' : 'gtid_binlog_pos';
      try {
        const [row] = await query(`SELECT @@GLOBAL.${variable} AS g`);
        gtidExecuted = String(row?.g ?? '').replace(/\s+/g, '');
      } catch {
        gtidExecuted = null;
      }
    }
    const holdsData = await this.holdsData();
    const recovery = this.config.role === 'primary' ? await readRecoveryRecord(this.config.dataDir) : null;
    if (begun < this.readingBegun) return;
    this.readingBegun = begun;
    this.reading = { at: Date.now(), unanswered, replica, replicaError, gtidExecuted, holdsData, recovery };
  }

  private async holdsData(): Promise<boolean> {
    try {
      return (await stat(join(this.config.dataDir, 'mysql'))).isDirectory();
    } catch {
      return false;
    }
  }

  backupRefusal(): string | null {
    if (this.config.role === 'replica' && this.setup.state !== 'configured') {
      // A backup of a replica that does not replicate yet would carry no usable position.
      return `this replica is not replicating yet (${setupReason(this.setup)})`;
    }
    return null;
  }

  async readiness(): Promise<Readiness> {
    const reading = this.reading;
    const age = Date.now() - reading.at;
    if (age > READING_STALE_MS) return { ready: false, reason: `no reading of the local server for ${Math.round(age / 1000)} s` };
    if (reading.unanswered !== null) return { ready: false, reason: `local server does not answer: ${reading.unanswered}` };
    if (this.config.role === 'primary') {
      // Ready when its server answers, unless it was rebuilt from a replica and its GTID state
      // does not continue yet (primary-recovery.ts): nothing may be written before that.
      if (this.setup.state === 'blocked') return { ready: false, reason: this.setup.reason };
      if (this.setup.state === 'waiting' && this.records.recoveryPending) {
        return { ready: false, reason: `rebuilt from a replica, its GTID state is not set yet (${this.setup.reason})` };
      }
      return { ready: true, reason: null };
    }
    if (this.setup.state !== 'configured' || this.server === null) {
      return { ready: false, reason: setupReason(this.setup) };
    }
    const r = reading.replica;
    if (r === null) return { ready: false, reason: `replication state unknown: ${reading.replicaError ?? 'not read yet'}` };
    if (!r.configured) return { ready: false, reason: 'replication is not configured on the server' };
    if (r.ioRunning !== 'Yes') return { ready: false, reason: `IO thread ${r.ioRunning ?? 'missing'}${r.lastIoError ? `: ${r.lastIoError}` : ''}` };
    if (r.sqlRunning !== 'Yes') return { ready: false, reason: `SQL thread ${r.sqlRunning ?? 'missing'}${r.lastSqlError ? `: ${r.lastSqlError}` : ''}` };
    // Reads sent here must be close to the primary's data.
    const max = this.config.readyMaxLagSeconds;
    if (r.secondsBehind === null) return { ready: false, reason: 'lag unknown: Seconds_Behind_Master is NULL' };
    if (r.secondsBehind > max) return { ready: false, reason: `${r.secondsBehind} s behind the primary (READY_MAX_LAG=${max})` };
    return { ready: true, reason: null };
  }

  async status(): Promise<Record<string, unknown>> {
    const reading = this.reading;
    const readiness = await this.readiness();
    let replication: Record<string, unknown> | null = null;
    const r = reading.replica;
    if (this.config.role === 'replica') {
      replication = { setup: this.setup };
      if (r !== null) {
        replication = {
          ...replication,
          source_host: r.sourceHost,
          io_running: r.ioRunning,
          sql_running: r.sqlRunning,
          seconds_behind: r.secondsBehind,
          last_io_error: r.lastIoError,
          last_sql_error: r.lastSqlError,
          using_gtid: r.usingGtid,
          uses_gtid: r.usesGtid,
        };
      } else if (reading.replicaError !== null) {
        replication = { ...replication, error: reading.replicaError };
      }
    }
    return {
      pod: this.config.podName,
      ordinal: this.config.ordinal,
      role: this.config.role,
      server_id: this.config.serverId,
      server_version: this.server?.version.text ?? null,
      ready: readiness.ready,
      not_ready_reason: readiness.reason,
      replication,
      replicating: r !== null && r.configured && r.ioRunning === 'Yes' && r.sqlRunning === 'Yes',
      holds_data: reading.holdsData,
      gtid_executed: reading.gtidExecuted,
      serving_backup: this.backups.inProgress !== null,
      backup_in_progress: this.backups.inProgress,
      last_backup: this.backups.last,
      clone: this.records.clone,
      read_at: new Date(reading.at).toISOString(),
      ...(this.config.role === 'primary' ? { primary_start: this.records.primaryStart, primary_recovery: reading.recovery } : {}),
    };
  }
}

/** Refreshes the pod's reading every READING_MS until `signal`, one refresh at a time. */
async function keepReading(status: PodStatus, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await status.refresh();
    await delay(READING_MS, undefined, { signal }).catch(() => {});
  }
}

/** Sets up this pod's role once; resolves with when the server it was set up on had started. */
async function setUpReplication(config: SidecarConfig, db: Db, status: PodStatus, log: Logger, signal: AbortSignal): Promise<number> {
  await waitForServer(db, log, signal);
  const serverStartedAt = await readServerStartedAt(db);
  const server = await readServerFacts(db);
  status.server = server;
  await status.refresh();
  log.info(
    { phase: 'wait-server', server_version: server.version.text, flavor: server.version.flavor, gtid_mode: server.gtidMode },
    'connected to the local server',
  );
  if (config.role === 'primary') {
    // Ordinal 0 never replicates; a primary rebuilt from a replica first continues its GTID state.
    const outcome = await ensurePrimaryContinuity({ db, server, dataDir: config.dataDir, log });
    status.setup = outcome.state === 'blocked' ? outcome : { state: 'configured', how: outcome.state === 'none' ? 'recorded-earlier' : outcome.how };
    return serverStartedAt;
  }
  status.setup = await ensureReplication({
    db,
    server,
    mode: config.replicationMode,
    dataDir: config.dataDir,
    source: replicationSource(config),
    log,
  });
  return serverStartedAt;
}

/**
 * On a configured replica, every WATCH_MS: when the local server restarted (its container alone
 * may), start the replication threads that skip-slave-start left stopped, as the server itself
 * would have; and while the primary refuses the account the replica was set up with, issue the
 * configured one, at most once per start, so that a wrong password in the configuration leaves
 * the replica not ready with the reason instead of looping.
 */
async function watchReplica(
  config: SidecarConfig,
  db: Db,
  server: ServerFacts,
  watch: { serverStartedAt: number; credentials: boolean },
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const source = replicationSource(config);
  let { serverStartedAt, credentials } = watch;
  while (!signal.aborted) {
    await delay(WATCH_MS, undefined, { signal }).catch(() => {});
    if (signal.aborted) return;
    try {
      const startedAt = await readServerStartedAt(db);
      if (startedAt > serverStartedAt + RESTART_SLACK_MS) {
        log.info({ phase: 'replication' }, 'the local server restarted');
        await startIfStopped(db, server.version, await readReplicaStatus(db, server.version), log.child({ phase: 'replication' }));
      }
      serverStartedAt = startedAt;
      if (credentials && (await reissueRefusedCredentials({ db, server, source, log }))) credentials = false;
    } catch (err) {
      log.warn({ phase: 'replication', err: errorMessage(err) }, 'could not check the replication threads or account, retrying');
    }
  }
}

export async function runSidecar(config: SidecarConfig, log: Logger, signal: AbortSignal): Promise<void> {
  if (config.backup.token === null) {
    log.warn({ phase: 'http' }, 'BACKUP_AUTH=none: anyone who can reach the backup port can copy all data');
  }
  const db = createDb(config.mysql);
  const backups = new CountedBackupService(config, log, signal);
  const clone = await readCloneRecord(config.dataDir);
  const primaryStart = config.role === 'primary' ? await readJsonRecord(config.confDir, PRIMARY_START_RECORD) : null;
  const recovery = config.role === 'primary' ? await readRecoveryRecord(config.dataDir) : null;
  const recoveryPending = recovery !== null && (recovery.continuity === null || recovery.continuity.how === 'applying');
  const status = new PodStatus(config, db, backups, { clone, primaryStart, recoveryPending });
  const reading = keepReading(status, signal);
  const metrics = new AgentMetrics({
    replication: async () => status.reading.replica,
    ready: async () => (await status.readiness()).ready,
    backupInProgress: () => backups.inProgress !== null,
    clone,
    pod: { role: config.role, ordinal: config.ordinal },
  });
  backups.countInto(metrics);
  const app = buildHttpServer({ token: config.backup.token, idleTimeoutMs: config.backup.idleTimeoutMs, backups, status, log, metrics });
  await app.listen({ host: config.backup.bind, port: config.backup.port, backlog: LISTEN_BACKLOG });
  log.info({ phase: 'http', bind: config.backup.bind, port: config.backup.port }, 'serving');

  // Replication setup retries on errors (server restarting, transient failures) until it
  // reaches a verdict; a blocked verdict (no or invalid info files) needs a person.
  const setup = (async () => {
    while (!signal.aborted) {
      try {
        const serverStartedAt = await setUpReplication(config, db, status, log, signal);
        // The setup has its verdict (replication started, or not): /readyz and /status say so now.
        await status.refresh();
        if (config.role === 'replica' && status.server && status.setup.state === 'configured') {
          // A replica configured just now has the configured account already.
          await watchReplica(config, db, status.server, { serverStartedAt, credentials: status.setup.how !== 'applied' }, log, signal);
        }
        return;
      } catch (err) {
        if (signal.aborted) return;
        status.setup = { state: 'waiting', reason: `replication setup failed: ${errorMessage(err)}` };
        log.error({ phase: 'replication', err: errorMessage(err) }, 'replication setup failed, retrying');
        await delay(SETUP_RETRY_MS, undefined, { signal }).catch(() => {});
      }
    }
  })();

  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  log.info({ phase: 'shutdown' }, 'shutting down');
  await app.close();
  await Promise.all([setup, reading]);
  await db.end();
  log.info({ phase: 'shutdown' }, 'stopped');
}
