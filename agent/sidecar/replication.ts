/**
 * Starting replication exactly once per clone. The clone's info files say where to start;
 * a durable record in DATA_DIR says it was done; and the server itself is asked first, so a
 * crash between CHANGE MASTER and the record is recognised rather than repeated.
 *
 * | record | server configured | info files      | action                              |
 * |--------|-------------------|-----------------|-------------------------------------|
 * | yes    | any               | any             | nothing                             |
 * | no     | yes               | any             | START SLAVE if stopped, then record |
 * | no     | no                | parse           | statements, START SLAVE, record     |
 * | no     | no                | none / invalid  | blocked: not ready, reason in status|
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../core/settings.js';
import type { Db } from '../mysql/db.js';
import { readReplicaStatus } from '../mysql/db.js';
import { ParseError, PlanError } from '../core/errors.js';
import { readFirst, writeFileAtomic } from '../core/files.js';
import { type CloneCoordinates, parseBinlogInfo, parseSlaveInfo } from '../mysql/info-files.js';
import type { Logger } from '../core/log.js';
import {
  type ReplicationSource,
  type RequestedMode,
  type ServerFacts,
  credentialStatements,
  planReplication,
  startReplicaStatement,
} from '../mysql/replication-sql.js';

/** ER_ACCESS_DENIED_ERROR, as the IO thread reports it when the primary refuses its account. */
const ACCESS_DENIED = 1045;

/** How often a replica retries a lost connection to the primary (the tutorial's value). */
const CONNECT_RETRY_SECONDS = 10;

/** The primary as CHANGE MASTER names it, from the configuration. */
export function replicationSource(config: Config): ReplicationSource {
  return {
    host: config.primaryHost,
    port: config.mysql.port,
    user: config.replication.user,
    password: config.replication.password,
    connectRetrySeconds: CONNECT_RETRY_SECONDS,
  };
}

/** The durable record; kept in the datadir so it lives and dies with the data it describes. */
export const RECORD_FILE = 'mysql-agent-replication.json';

/** Info file names, newest spelling first (MariaDB 11.1+ renamed them; the old ones are the fallback). */
const SLAVE_INFO = ['mariadb_backup_slave_info', 'xtrabackup_slave_info'];
const BINLOG_INFO = ['mariadb_backup_binlog_info', 'xtrabackup_binlog_info'];

export type SetupOutcome =
  | { readonly state: 'configured'; readonly how: 'recorded-earlier' | 'found-on-server' | 'applied'; readonly from?: string }
  | { readonly state: 'blocked'; readonly reason: string };

/**
 * The clone's coordinates: slave_info wins (a GTID replica with log-bin also leaves a
 * binlog_info of its own binlog, useless for following the primary), else binlog_info.
 */
export async function readCloneCoordinates(dataDir: string): Promise<{ file: string; text: string; coordinates: CloneCoordinates } | null> {
  const slave = await readFirst(dataDir, SLAVE_INFO);
  if (slave && slave.text.trim() !== '') return { file: slave.name, text: slave.text, coordinates: parseSlaveInfo(slave.text, slave.name) };
  const binlog = await readFirst(dataDir, BINLOG_INFO);
  if (binlog) return { file: binlog.name, text: binlog.text, coordinates: parseBinlogInfo(binlog.text, binlog.name) };
  return null;
}

export async function hasRecord(dataDir: string): Promise<boolean> {
  try {
    await readFile(join(dataDir, RECORD_FILE));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function writeRecord(dataDir: string, record: Record<string, unknown>): Promise<void> {
  await writeFileAtomic(join(dataDir, RECORD_FILE), `${JSON.stringify({ ...record, at: new Date().toISOString() }, null, 2)}\n`);
}

export async function ensureReplication(deps: {
  readonly db: Db;
  readonly server: ServerFacts;
  readonly mode: RequestedMode;
  readonly dataDir: string;
  readonly source: ReplicationSource;
  readonly log: Logger;
}): Promise<SetupOutcome> {
  const { db, server, dataDir, source } = deps;
  const { version } = server;
  const log = deps.log.child({ phase: 'replication' });
  if (await hasRecord(dataDir)) {
    log.info({ record: RECORD_FILE }, 'replication was configured earlier: not applying it again');
    return { state: 'configured', how: 'recorded-earlier' };
  }
  const status = await readReplicaStatus(db, version);
  if (status.configured) {
    // Configured but not recorded: we stopped between CHANGE MASTER and the record.
    log.warn({ source_host: status.sourceHost, io: status.ioRunning, sql: status.sqlRunning }, 'server already replicates but no record: adopting it, not applying CHANGE MASTER again');
    if (status.ioRunning === 'No' || status.sqlRunning === 'No') await db.query(startReplicaStatement(version));
    await writeRecord(dataDir, { how: 'found-on-server', source_host: status.sourceHost });
    return { state: 'configured', how: 'found-on-server' };
  }
  let clone;
  try {
    clone = await readCloneCoordinates(dataDir);
  } catch (err) {
    if (!(err instanceof ParseError)) throw err;
    const text = (await readFirst(dataDir, [err.source]))?.text ?? '';
    log.error({ file: err.source, content: text, err: err.message }, 'clone info file does not parse: replication not started');
    return { state: 'blocked', reason: `${err.message}; the file is left in DATA_DIR for inspection` };
  }
  if (!clone) {
    const reason = `no ${SLAVE_INFO[1]} or ${BINLOG_INFO[1]} in DATA_DIR=${dataDir} and replication is not configured: this replica was not cloned by mysql-agent init`;
    log.error(reason);
    return { state: 'blocked', reason };
  }
  let plan;
  try {
    plan = planReplication(server, clone.coordinates, deps.mode, source);
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    log.error({ from: clone.file, err: err.message }, 'replication not started');
    return { state: 'blocked', reason: err.message };
  }
  log.info({ from: clone.file, mode: plan.mode, why: plan.why }, 'replication mode chosen');
  for (const statement of plan.statements) {
    log.info({ sql: statement.shown, from: clone.file }, 'applying');
    await db.query(statement.sql);
  }
  await writeRecord(dataDir, {
    how: 'applied',
    from: clone.file,
    mode: plan.mode,
    coordinates: clone.coordinates,
    statements: plan.statements.map((s) => s.shown),
  });
  log.info({ from: clone.file, mode: plan.mode, source_host: source.host }, 'replication configured and started');
  return { state: 'configured', how: 'applied', from: clone.file };
}

/**
 * A replica configured earlier keeps the account it was given then. When the primary refuses
 * that account (the Secret was rotated and the pod restarted with the new one), the configured
 * account is issued again, position kept. Returns whether it did.
 */
export async function reissueRefusedCredentials(deps: {
  readonly db: Db;
  readonly server: ServerFacts;
  readonly source: ReplicationSource;
  readonly log: Logger;
}): Promise<boolean> {
  const { db, source } = deps;
  const { version } = deps.server;
  const status = await readReplicaStatus(db, version);
  if (!status.configured || status.lastIoErrno !== ACCESS_DENIED) return false;
  const log = deps.log.child({ phase: 'replication' });
  log.warn(
    { user: source.user, io_error: status.lastIoError },
    'the primary refuses the account this replica was set up with: issuing REPLICATION_USER and REPLICATION_PASSWORD, position kept',
  );
  for (const statement of credentialStatements(version, source)) {
    log.info({ sql: statement.shown }, 'applying');
    await db.query(statement.sql);
  }
  return true;
}
