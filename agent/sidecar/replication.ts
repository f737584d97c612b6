/**
 * Starting replication exactly once per clone. The clone's info files say where to start; a
 * durable record in DATA_DIR says how far we got (`applying` → `applied`, written ahead); and
 * the server itself is asked, so a stop between our CHANGE MASTER and the record is recognised
 * rather than repeated, and a channel the clone brought from its donor is cleared rather than
 * adopted. The decision is setupStep's (mysql/replication-setup.ts), shared with `plan`.
 */
import { ParseError, PlanError } from '../core/errors.js';
import { readFirst } from '../core/files.js';
import type { Logger } from '../core/log.js';
import {
  REPLICATION_RECORD,
  REPLICATION_TLS_RECORD,
  type ReplicationRecord,
  type ReplicationTlsRecord,
  readReplicationState,
  readReplicationTlsRecord,
  writeRecord,
} from '../core/records.js';
import { type CloneInfo, readCloneCoordinates } from '../mysql/clone-info.js';
import { type Db, type ReplicaStatus, readReplicaStatus } from '../mysql/db.js';
import { noCloneReason, setupStep, tlsStep } from '../mysql/replication-setup.js';
import {
  type ReplicationSource,
  type RequestedMode,
  type ServerFacts,
  type Statement,
  credentialStatements,
  planReplication,
  planStatements,
  startReplicaStatement,
  tlsStatements,
} from '../mysql/replication-sql.js';
import type { ServerVersion } from '../mysql/server-version.js';

/** ER_ACCESS_DENIED_ERROR, as the IO thread reports it when the primary refuses its account. */
const ACCESS_DENIED = 1045;

export type SetupOutcome =
  | { readonly state: 'configured'; readonly how: 'recorded-earlier' | 'found-on-server' | 'applied'; readonly from?: string }
  | { readonly state: 'blocked'; readonly reason: string };

const saveRecord = (dataDir: string, record: Omit<ReplicationRecord, 'at'>) =>
  writeRecord(dataDir, REPLICATION_RECORD, { ...record, at: new Date().toISOString() });

/**
 * The role configs start the server with skip-slave-start, so that no channel runs before the
 * sidecar has decided; replication the sidecar set up is therefore started by the sidecar, on
 * each start of the server as the server itself would. Returns whether it started anything.
 */
export async function startIfStopped(db: Db, version: ServerVersion, status: ReplicaStatus, log: Logger): Promise<boolean> {
  if (!status.configured || (status.ioRunning !== 'No' && status.sqlRunning !== 'No')) return false;
  log.info({ source_host: status.sourceHost, io: status.ioRunning, sql: status.sqlRunning }, 'replication threads are stopped: starting them');
  await db.query(startReplicaStatement(version));
  return true;
}

async function run(db: Db, statements: readonly Statement[], log: Logger, from: string): Promise<void> {
  for (const statement of statements) {
    log.info({ sql: statement.shown, from }, 'applying');
    await db.query(statement.sql);
  }
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
  const recorded = await readReplicationState(dataDir);
  const status = await readReplicaStatus(db, version);
  let clone: CloneInfo | null = null;
  let unreadable: ParseError | null = null;
  if (recorded !== 'applied') {
    try {
      clone = await readCloneCoordinates(dataDir);
    } catch (err) {
      if (!(err instanceof ParseError)) throw err;
      unreadable = err;
    }
  }
  const step = setupStep(recorded, status.configured, clone !== null || unreadable !== null);
  if (step === 'keep') {
    log.info({ record: REPLICATION_RECORD }, 'replication was configured earlier: not applying it again');
    await startIfStopped(db, version, status, log);
    return { state: 'configured', how: 'recorded-earlier' };
  }
  if (step === 'adopt') {
    log.warn(
      { source_host: status.sourceHost, io: status.ioRunning, sql: status.sqlRunning, record: recorded },
      recorded === 'applying'
        ? 'server replicates as configured before a stop that came ahead of the record: adopting it, not applying CHANGE MASTER again'
        : 'server already replicates, with no record and no clone info files (set up by other means): adopting it',
    );
    await startIfStopped(db, version, status, log);
    await saveRecord(dataDir, { state: 'applied', how: 'found-on-server', source_host: status.sourceHost });
    return { state: 'configured', how: 'found-on-server' };
  }
  if (unreadable !== null) {
    // Stryker disable next-line StringLiteral: only the log's `content` when the file vanished since it was parsed
    const text = (await readFirst(dataDir, [unreadable.source]))?.text ?? '';
    log.error({ file: unreadable.source, content: text, err: unreadable.message }, 'clone info file does not parse: replication not started');
    return { state: 'blocked', reason: `${unreadable.message}; the file is left in DATA_DIR for inspection` };
  }
  // Past 'keep' and 'adopt' the step is 'apply' exactly when there is a clone to apply.
  if (clone === null) {
    const reason = noCloneReason(dataDir);
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
  if (status.configured) {
    log.warn({ source_host: status.sourceHost, io: status.ioRunning, sql: status.sqlRunning }, "the clone carries replication settings of its own (its donor's channel): clearing them first");
  }
  const record = { from: clone.file, mode: plan.mode, coordinates: clone.coordinates, statements: planStatements(plan).map((s) => s.shown) };
  await run(db, plan.clear, log, clone.file);
  // From here on a configured server is ours: a stop before `applied` is adopted, not repeated.
  await saveRecord(dataDir, { state: 'applying', ...record });
  await run(db, plan.configure, log, clone.file);
  await saveRecord(dataDir, { state: 'applied', how: 'applied', ...record });
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

/**
 * REPLICATION_TLS on a replica configured earlier (set up without TLS, say, and restarted with
 * it): the channel gets the SSL options once and nothing else, so the server keeps where it is;
 * written ahead in its own record (`applying` → `applied`). tlsStep (mysql/replication-setup.ts,
 * shared with `plan`) decides. Returns whether it applied anything.
 */
export async function ensureReplicationTls(deps: {
  readonly db: Db;
  readonly server: ServerFacts;
  readonly dataDir: string;
  readonly source: ReplicationSource;
  readonly log: Logger;
}): Promise<boolean> {
  const { db, dataDir } = deps;
  const { version } = deps.server;
  const { tls } = deps.source;
  const log = deps.log.child({ phase: 'replication' });
  const status = await readReplicaStatus(db, version);
  const step = tlsStep(await readReplicationTlsRecord(dataDir), status.ssl, tls);
  const save = (record: Omit<ReplicationTlsRecord, 'at' | 'mode' | 'ca_file'>) =>
    writeRecord(dataDir, REPLICATION_TLS_RECORD, { ...record, mode: tls.mode, ca_file: tls.caFile, at: new Date().toISOString() });
  if (step === 'keep') return false;
  if (step === 'record') {
    await save({ state: 'applied', how: 'found-on-server' });
    return false;
  }
  const statements = tlsStatements(version, tls);
  log.warn({ tls: tls.mode, ssl_allowed: status.ssl.allowed, ssl_ca: status.ssl.caFile }, `the replication channel's SSL settings are not REPLICATION_TLS=${tls.mode}: giving it these once, position kept`);
  await save({ state: 'applying', statements: statements.map((s) => s.shown) });
  await run(db, statements, log, REPLICATION_TLS_RECORD);
  await save({ state: 'applied', how: 'applied', statements: statements.map((s) => s.shown) });
  return true;
}
