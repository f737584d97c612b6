/**
 * The connection to the local server: a small mysql2 pool (it reconnects by itself after the
 * server restarts), the wait for the server to answer, and typed readings of its state.
 */
import mysql from 'mysql2/promise';
import { format } from 'mysql2';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { backoffDelay, type Clock, realClock } from '../core/retry.js';
import { type ServerFacts, replicaStatusQuery } from './replication-sql.js';
import { type ServerVersion, parseServerVersion } from './server-version.js';

export interface Db {
  /** One statement; fails after `timeoutMs` (default STATEMENT_TIMEOUT_MS) without an answer. */
  query(sql: string, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  end(): Promise<void>;
}

/** Long enough for RESET BINARY LOGS over many binlogs; a hung server fails instead of hanging the caller. */
export const STATEMENT_TIMEOUT_MS = 60_000;
/** Statements waiting for one of the pool's connections; beyond that a query fails at once. */
const QUEUE_LIMIT = 16;

/** The local server's address and the agent's account (MYSQL_*). */
export interface Connection {
  readonly host: string;
  readonly port: number;
  /** A Unix socket instead of host and port (the drill's throwaway server listens on one). */
  readonly socketPath?: string;
  readonly user: string;
  readonly password: string;
}

export function createDb(connection: Connection): Db {
  const pool = mysql.createPool({
    ...(connection.socketPath ? { socketPath: connection.socketPath } : { host: connection.host, port: connection.port }),
    user: connection.user,
    password: connection.password,
    connectionLimit: 2,
    queueLimit: QUEUE_LIMIT,
    connectTimeout: 5000,
    enableKeepAlive: true,
    // Statements are rendered (and escaped) by replication-sql.ts; one statement per call.
    multipleStatements: false,
  });
  return {
    async query(sql, timeoutMs = STATEMENT_TIMEOUT_MS) {
      const [rows] = await pool.query({ sql, timeout: timeoutMs });
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    },
    end: () => pool.end(),
  };
}

/** Waits until the server answers `SELECT 1`, logging while it waits. */
export async function waitForServer(db: Db, log: Logger, signal: AbortSignal, clock: Clock = realClock): Promise<void> {
  const started = clock.now();
  for (let attempt = 1; ; attempt++) {
    try {
      await db.query('SELECT 1');
      if (attempt > 1) log.info({ phase: 'wait-server', waited_ms: clock.now() - started }, 'local server answers');
      return;
    } catch (err) {
      if (signal.aborted) throw err;
      const wait = backoffDelay({ deadlineMs: Infinity, initialDelayMs: 500, maxDelayMs: 10_000 }, attempt);
      log.info({ phase: 'wait-server', attempt, retry_in_ms: wait, err: errorMessage(err) }, 'waiting for the local server');
      await clock.sleep(wait, signal);
    }
  }
}

/** Flavor, version and, on MySQL, whether gtid_mode is ON (MariaDB always has GTIDs). */
export async function readServerFacts(db: Db): Promise<ServerFacts> {
  const [row] = await db.query('SELECT VERSION() AS version, @@version_comment AS comment');
  const version = parseServerVersion(String(row?.version ?? ''), String(row?.comment ?? ''));
  if (version.flavor === 'mariadb') return { version, gtidMode: true };
  const [gtid] = await db.query('SELECT @@GLOBAL.gtid_mode AS gtid_mode');
  return { version, gtidMode: String(gtid?.gtid_mode ?? '').toUpperCase() === 'ON' };
}

/** When the server started, in ms since the epoch (to within a second or two): a later value means it restarted. */
export async function readServerStartedAt(db: Db): Promise<number> {
  const [row] = await db.query("SHOW GLOBAL STATUS LIKE 'Uptime'");
  return Date.now() - Number(row?.Value ?? 0) * 1000;
}

export interface ReplicaStatus {
  readonly configured: boolean;
  readonly sourceHost: string | null;
  readonly ioRunning: string | null;
  readonly sqlRunning: string | null;
  readonly secondsBehind: number | null;
  readonly lastIoError: string | null;
  /** The server error code behind lastIoError (1045: the source refused the account). */
  readonly lastIoErrno: number | null;
  readonly lastSqlError: string | null;
  readonly usingGtid: string | null;
  /** Follows the source by GTID: MariaDB Using_Gtid other than No, MySQL Auto_Position 1; null when unknown. */
  readonly usesGtid: boolean | null;
  /** The channel's SSL settings: Master_SSL_Allowed (Yes, No, Ignored), Master_SSL_CA_File, Master_SSL_Verify_Server_Cert. */
  readonly ssl: { readonly allowed: string | null; readonly caFile: string | null; readonly verifyServerCert: string | null };
}

/** Reads a SHOW SLAVE/REPLICA STATUS row in either vocabulary (Master_* / Source_*, Slave_* / Replica_*). */
export function parseReplicaStatus(row: Record<string, unknown> | undefined): ReplicaStatus {
  const pick = (...names: string[]): string | null => {
    for (const n of names) {
      const v = row?.[n];
      if (v !== undefined && v !== null) return String(v);
    }
    return null;
  };
  const host = pick('Master_Host', 'Source_Host');
  const behind = pick('Seconds_Behind_Master', 'Seconds_Behind_Source');
  const usingGtid = pick('Using_Gtid');
  const autoPosition = pick('Auto_Position');
  const ioErrno = Number(pick('Last_IO_Errno') ?? 0);
  return {
    configured: host !== null && host !== '',
    sourceHost: host || null,
    ioRunning: pick('Slave_IO_Running', 'Replica_IO_Running'),
    sqlRunning: pick('Slave_SQL_Running', 'Replica_SQL_Running'),
    secondsBehind: behind === null ? null : Number(behind),
    lastIoError: pick('Last_IO_Error') || null,
    lastIoErrno: ioErrno > 0 ? ioErrno : null,
    lastSqlError: pick('Last_SQL_Error') || null,
    usingGtid,
    usesGtid: usingGtid !== null ? usingGtid !== 'No' : autoPosition !== null ? autoPosition === '1' : null,
    ssl: {
      allowed: pick('Master_SSL_Allowed', 'Source_SSL_Allowed'),
      caFile: pick('Master_SSL_CA_File', 'Source_SSL_CA_File'),
      verifyServerCert: pick('Master_SSL_Verify_Server_Cert', 'Source_SSL_Verify_Server_Cert'),
    },
  };
}

export async function readReplicaStatus(db: Db, version: ServerVersion, timeoutMs?: number): Promise<ReplicaStatus> {
  const rows = await db.query(replicaStatusQuery(version), timeoutMs);
  return parseReplicaStatus(rows[0]);
}

/** MariaDB's `Gtid_list` event text, `[0-100-5,1-100-3]`, to a GTID state (`''` for `[]`); null when it is not one. */
export function parseGtidList(info: string): string | null {
  const m = /^\[([0-9,-]*)\]$/.exec(info.trim());
  return m ? m[1]! : null;
}

/**
 * Where the server's binary logs begin: the GTID state before its oldest binlog (MariaDB: that
 * file's Gtid_list event; MySQL: gtid_purged). A replica whose GTID covers it can be served from
 * them; one behind it cannot. null without binary logs or when it cannot be read.
 */
export async function readBinlogStart(db: Db, version: ServerVersion, timeoutMs?: number): Promise<string | null> {
  try {
    if (version.flavor === 'mysql') {
      const [row] = await db.query('SELECT @@GLOBAL.gtid_purged AS g', timeoutMs);
      return String(row?.g ?? '').replace(/\s+/g, '');
    }
    const logs = await db.query('SHOW BINARY LOGS', timeoutMs);
    const first = logs[0]?.Log_name;
    if (typeof first !== 'string') return null;
    const events = await db.query(format('SHOW BINLOG EVENTS IN ? LIMIT 4', [first]), timeoutMs);
    const list = events.find((e) => e.Event_type === 'Gtid_list');
    return list === undefined ? null : parseGtidList(String(list.Info ?? ''));
  } catch {
    return null;
  }
}
