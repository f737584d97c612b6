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
import { ParseError, PlanError } from '../core/errors.js';
import { readFirst } from '../core/files.js';
import type { Logger } from '../core/log.js';
import { REPLICATION_RECORD, hasReplicationRecord, writeRecord } from '../core/records.js';
import { BINLOG_INFO, SLAVE_INFO, readCloneCoordinates } from '../mysql/clone-info.js';
import { type Db, readReplicaStatus } from '../mysql/db.js';
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

export type SetupOutcome =
  | { readonly state: 'configured'; readonly how: 'recorded-earlier' | 'found-on-server' | 'applied'; readonly from?: string }
  | { readonly state: 'blocked'; readonly reason: string };

/** The record says how replication was set up, once: `applied` statements, or `found-on-server`. */
const saveRecord = (dataDir: string, record: Record<string, unknown>) =>
  writeRecord(dataDir, REPLICATION_RECORD, { ...record, at: new Date().toISOString() });

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
  if (await hasReplicationRecord(dataDir)) {
    log.info({ record: REPLICATION_RECORD }, 'replication was configured earlier: not applying it again');
    return { state: 'configured', how: 'recorded-earlier' };
  }
  const status = await readReplicaStatus(db, version);
  if (status.configured) {
    // Configured but not recorded: we stopped between CHANGE MASTER and the record.
    log.warn({ source_host: status.sourceHost, io: status.ioRunning, sql: status.sqlRunning }, 'server already replicates but no record: adopting it, not applying CHANGE MASTER again');
    if (status.ioRunning === 'No' || status.sqlRunning === 'No') await db.query(startReplicaStatement(version));
    await saveRecord(dataDir, { how: 'found-on-server', source_host: status.sourceHost });
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
  await saveRecord(dataDir, {
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
