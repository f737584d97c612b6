/**
 * agent/mysql/ is what the agent knows of the servers: info files, GTID sets, versions and
 * dialects, the statements, the connection, and `plan`. Pure functions wherever it can be.
 *
 * Chooses how a fresh replica follows the primary (GTID or binlog position) and builds the
 * statements for the server's dialect. Every value is a validated, typed value and is escaped
 * by the driver's formatter: nothing from a file or the environment is pasted into SQL as found.
 */
// The driver's own formatter (mysql2's `format` is this function), without loading the driver:
// init, plan, status and backup build statements and never connect with it.
import { format } from 'sql-escaper';
import { PlanError } from '../core/errors.js';
import { type CloneCoordinates, gtidFlavor } from './info-files.js';
import {
  type ServerVersion,
  hasChangeReplicationSource,
  hasReplicaKeyword,
  hasResetBinaryLogsAndGtids,
  needsPublicKeyFetch,
} from './server-version.js';

export type ReplicationMode = 'gtid' | 'position';
export type RequestedMode = 'auto' | ReplicationMode;
export const REQUESTED_MODES: readonly RequestedMode[] = ['auto', 'gtid', 'position'];

/** What the replica's server is and whether it can replicate by GTID. */
export interface ServerFacts {
  readonly version: ServerVersion;
  /** MySQL: @@gtid_mode is ON. MariaDB always has GTIDs: true. */
  readonly gtidMode: boolean;
}

/** REPLICATION_TLS: how the replica's connection to the primary is encrypted and checked. */
export type ReplicationTlsMode = 'off' | 'required' | 'verify-ca' | 'verify-identity';
export const REPLICATION_TLS_MODES: readonly ReplicationTlsMode[] = ['off', 'required', 'verify-ca', 'verify-identity'];

export interface ReplicationTls {
  readonly mode: ReplicationTlsMode;
  /** The CA the primary's certificate is checked against (TLS_DIR's ca.crt, as the server sees it); null when unset. */
  readonly caFile: string | null;
}

export const NO_REPLICATION_TLS: ReplicationTls = { mode: 'off', caFile: null };

export interface ReplicationSource {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly connectRetrySeconds: number;
  readonly tls: ReplicationTls;
}

/** How often a replica retries a lost connection to the primary (the tutorial's value). */
const CONNECT_RETRY_SECONDS = 10;

/** The primary as CHANGE MASTER names it: the configured host, the servers' port, the replication account. */
export function replicationSource(access: {
  readonly primaryHost: string;
  readonly mysql: { readonly port: number };
  readonly replication: { readonly user: string; readonly password: string; readonly tls: ReplicationTls };
}): ReplicationSource {
  return {
    host: access.primaryHost,
    port: access.mysql.port,
    user: access.replication.user,
    password: access.replication.password,
    connectRetrySeconds: CONNECT_RETRY_SECONDS,
    tls: access.replication.tls,
  };
}

/** A statement as it is run, and as it may be logged or shown (password masked). */
export interface Statement {
  readonly sql: string;
  readonly shown: string;
}

export interface ReplicationPlan {
  readonly mode: ReplicationMode;
  /** One line on why this mode, for logs and `plan`. */
  readonly why: string;
  /**
   * Forget the replication configuration the clone brought along: a clone of a replica carries
   * the donor's channel (MySQL 8.x keeps it in InnoDB tables, copied with mysql.ibd; a copied
   * MariaDB datadir has master.info). Safe to repeat.
   */
  readonly clear: readonly Statement[];
  /** Then ours: once only, under the `applying` record. */
  readonly configure: readonly Statement[];
}

/** Every statement of a plan in the order it runs: what `plan` prints and the record lists. */
export const planStatements = (plan: ReplicationPlan): readonly Statement[] => [...plan.clear, ...plan.configure];

const MASK = '***';

/**
 * | server               | clone carries    | auto     | gtid   | position |
 * |----------------------|------------------|----------|--------|----------|
 * | MariaDB              | GTID (+position) | gtid     | gtid   | position if it has one |
 * | MariaDB              | position only    | position | refuse | position |
 * | MySQL, gtid_mode ON  | GTID (+position) | gtid     | gtid   | position if it has one |
 * | MySQL, gtid_mode ON  | position only    | position | refuse | position |
 * | MySQL, gtid_mode OFF | any              | position | refuse | position |
 * A GTID set of the other flavor (a MySQL set on MariaDB) counts as no GTID.
 */
export function chooseMode(server: ServerFacts, clone: CloneCoordinates, requested: RequestedMode): { mode: ReplicationMode; why: string } {
  const { flavor } = server.version;
  const file = clone.from;
  const gtidProblem =
    flavor === 'mysql' && !server.gtidMode
      ? 'gtid_mode is not ON on this MySQL server'
      : clone.gtid === null
        ? `the clone's ${file} carries no GTID`
        : gtidFlavor(clone.gtid) !== flavor
          ? `the clone's GTID set "${clone.gtid}" is not a ${flavor === 'mariadb' ? 'MariaDB' : 'MySQL'} GTID`
          : null;
  const positionProblem = clone.position === null ? `the clone's ${file} carries only a GTID position (it came from a GTID replica)` : null;

  if (requested === 'gtid') {
    if (gtidProblem) throw new PlanError(`REPLICATION_MODE=gtid is impossible: ${gtidProblem}; use REPLICATION_MODE=position or auto`);
    return { mode: 'gtid', why: 'REPLICATION_MODE=gtid' };
  }
  if (requested === 'position') {
    if (positionProblem) throw new PlanError(`REPLICATION_MODE=position is impossible: ${positionProblem}; use REPLICATION_MODE=gtid or auto`);
    return { mode: 'position', why: 'REPLICATION_MODE=position' };
  }
  if (!gtidProblem) return { mode: 'gtid', why: `auto: ${flavor === 'mariadb' ? 'MariaDB' : 'MySQL with gtid_mode=ON'} and the clone's ${file} carries a GTID` };
  if (!positionProblem) return { mode: 'position', why: `auto: ${gtidProblem}` };
  throw new PlanError(`the clone cannot be followed: ${positionProblem}, and ${gtidProblem}`);
}

type Value = string | number | { toSqlString(): string };
const raw = (sql: string) => ({ toSqlString: () => sql });

function render(template: string, values: Value[] = [], masked: Value[] = values): Statement {
  return { sql: format(template, values), shown: format(template, masked) };
}

/** `CHANGE MASTER TO` or, where it exists, `CHANGE REPLICATION SOURCE TO` with SOURCE_* names. */
function change(version: ServerVersion, options: [string, Value, Value?][]): Statement {
  const modern = hasChangeReplicationSource(version);
  const head = modern ? 'CHANGE REPLICATION SOURCE TO ' : 'CHANGE MASTER TO ';
  const names = options.map(([name]) => `${modern ? name.replace('MASTER_', 'SOURCE_') : name}=?`);
  return render(
    head + names.join(', '),
    options.map(([, v]) => v),
    options.map(([, v, m]) => m ?? v),
  );
}

/**
 * The SSL options of CHANGE MASTER for a REPLICATION_TLS mode, all three always given so that
 * the result is the mode whatever the server's defaults (MariaDB 11 verifies by default):
 * `MASTER_SSL`, `MASTER_SSL_CA` (empty: none), `MASTER_SSL_VERIFY_SERVER_CERT` (the host name);
 * `change` spells them SOURCE_* where the server has CHANGE REPLICATION SOURCE (MySQL 8.0.23+).
 * MariaDB and MySQL both check the chain against MASTER_SSL_CA when it is given.
 */
export function tlsOptions(tls: ReplicationTls): [string, Value][] {
  const verifies = tls.mode === 'verify-ca' || tls.mode === 'verify-identity';
  if (verifies && tls.caFile === null) throw new PlanError(`REPLICATION_TLS=${tls.mode} needs a CA file: set TLS_DIR`);
  return [
    ['MASTER_SSL', tls.mode === 'off' ? 0 : 1],
    ['MASTER_SSL_CA', verifies ? tls.caFile! : ''],
    ['MASTER_SSL_VERIFY_SERVER_CERT', tls.mode === 'verify-identity' ? 1 : 0],
  ];
}

/** Whether the server's channel already has the SSL settings of `tls` (SHOW SLAVE/REPLICA STATUS). */
export function tlsApplied(ssl: { readonly allowed: string | null; readonly caFile: string | null; readonly verifyServerCert: string | null }, tls: ReplicationTls): boolean {
  const verifies = tls.mode === 'verify-ca' || tls.mode === 'verify-identity';
  return (
    (ssl.allowed === 'Yes') === (tls.mode !== 'off') &&
    (ssl.caFile ?? '') === (verifies ? (tls.caFile ?? '') : '') &&
    (ssl.verifyServerCert === 'Yes') === (tls.mode === 'verify-identity')
  );
}

/**
 * A configured replica's channel given the SSL settings of `tls` and nothing else: like a new
 * account, the server keeps where it is (binlog position or GTID state); the threads are stopped
 * first because MariaDB refuses CHANGE MASTER on a running replica.
 */
export function tlsStatements(version: ServerVersion, tls: ReplicationTls): Statement[] {
  return [render(stopReplicaStatement(version)), change(version, tlsOptions(tls)), render(startReplicaStatement(version))];
}

/** The statements, in order, that make this server replicate from `source` where the clone ends. */
export function replicationStatements(server: ServerFacts, clone: CloneCoordinates, mode: ReplicationMode, source: ReplicationSource): Statement[] {
  const { version } = server;
  const connection: [string, Value, Value?][] = [
    ['MASTER_HOST', source.host],
    ['MASTER_PORT', source.port],
    ['MASTER_USER', source.user],
    ['MASTER_PASSWORD', source.password, MASK],
    ['MASTER_CONNECT_RETRY', source.connectRetrySeconds],
  ];
  if (needsPublicKeyFetch(version)) connection.push(['GET_MASTER_PUBLIC_KEY', 1]);
  // A fresh channel without TLS is left to the server's defaults, as before REPLICATION_TLS.
  if (source.tls.mode !== 'off') connection.push(...tlsOptions(source.tls));
  const statements: Statement[] = [];

  if (mode === 'gtid') {
    if (clone.gtid === null) throw new PlanError('GTID mode without a GTID in the clone');
    if (version.flavor === 'mariadb') {
      // https://mariadb.com/kb/en/gtid/#setting-up-a-new-replica-server-with-global-transaction-id
      statements.push(render('SET GLOBAL gtid_slave_pos = ?', [clone.gtid]));
      statements.push(change(version, [...connection, ['MASTER_USE_GTID', raw('slave_pos')]]));
    } else {
      // gtid_purged can only be set on an empty gtid_executed, which a restored clone is not.
      statements.push(render(hasResetBinaryLogsAndGtids(version) ? 'RESET BINARY LOGS AND GTIDS' : 'RESET MASTER'));
      statements.push(render('SET GLOBAL gtid_purged = ?', [clone.gtid]));
      statements.push(change(version, [...connection, ['MASTER_AUTO_POSITION', 1]]));
    }
  } else {
    if (clone.position === null) throw new PlanError('position mode without a binlog position in the clone');
    const { file, pos } = clone.position;
    statements.push(change(version, [...connection, ['MASTER_LOG_FILE', file], ['MASTER_LOG_POS', pos]]));
  }
  statements.push(render(startReplicaStatement(version)));
  return statements;
}

/** The mode and the statements together: what the sidecar runs on a fresh clone and `plan` prints. */
export function planReplication(server: ServerFacts, clone: CloneCoordinates, requested: RequestedMode, source: ReplicationSource): ReplicationPlan {
  const { mode, why } = chooseMode(server, clone, requested);
  return { mode, why, clear: clearReplicationStatements(server.version), configure: replicationStatements(server, clone, mode, source) };
}

/** The status query of the dialect. */
export function replicaStatusQuery(version: ServerVersion): string {
  return hasReplicaKeyword(version) ? 'SHOW REPLICA STATUS' : 'SHOW SLAVE STATUS';
}

/** The statement that starts stopped replication threads, in the dialect. */
export function startReplicaStatement(version: ServerVersion): string {
  return hasReplicaKeyword(version) ? 'START REPLICA' : 'START SLAVE';
}

/** The statement that stops the replication threads, in the dialect. */
export function stopReplicaStatement(version: ServerVersion): string {
  return hasReplicaKeyword(version) ? 'STOP REPLICA' : 'STOP SLAVE';
}

/** The statement that removes every replication channel and its settings, in the dialect (the threads must be stopped). */
export function resetReplicaAllStatement(version: ServerVersion): string {
  return hasReplicaKeyword(version) ? 'RESET REPLICA ALL' : 'RESET SLAVE ALL';
}

/**
 * Forgets whatever replication configuration the server has: the threads stopped, then every
 * channel, its connection settings, positions and relay logs removed. Safe to repeat, and on a
 * server that has none (stopping stopped threads is only a warning).
 */
export function clearReplicationStatements(version: ServerVersion): Statement[] {
  return [render(stopReplicaStatement(version)), render(resetReplicaAllStatement(version))];
}

/**
 * Another account for the same source. Only the account changes, so the server keeps where it
 * is (binlog position or GTID state) and refetches from there; the threads are stopped first
 * because MariaDB refuses CHANGE MASTER on a running replica.
 */
export function credentialStatements(version: ServerVersion, source: ReplicationSource): Statement[] {
  return [
    render(stopReplicaStatement(version)),
    change(version, [
      ['MASTER_USER', source.user],
      ['MASTER_PASSWORD', source.password, MASK],
    ]),
    render(startReplicaStatement(version)),
  ];
}
