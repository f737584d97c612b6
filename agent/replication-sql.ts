/**
 * Builds the statements that point a fresh replica at the primary, for the server's dialect.
 * Every value is a validated, typed value and is escaped by the driver's formatter: nothing
 * from a file or the environment is pasted into SQL as found.
 */
import mysql from 'mysql2';
import type { CloneCoordinates } from './info-files.js';
import {
  type ServerVersion,
  hasChangeReplicationSource,
  hasReplicaKeyword,
  hasResetBinaryLogsAndGtids,
  needsPublicKeyFetch,
} from './server-version.js';

export interface ReplicationSource {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly connectRetrySeconds: number;
}

/** A statement as it is run, and as it may be logged or shown (password masked). */
export interface Statement {
  readonly sql: string;
  readonly shown: string;
}

const MASK = '***';

type Value = string | number | { toSqlString(): string };
const raw = (sql: string) => ({ toSqlString: () => sql });

function render(template: string, values: Value[], masked: Value[] = values): Statement {
  return { sql: mysql.format(template, values), shown: mysql.format(template, masked) };
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
 * The statements, in order, that make this server replicate from `source` starting where the
 * clone ends.
 */
export function replicationStatements(
  version: ServerVersion,
  coordinates: CloneCoordinates,
  source: ReplicationSource,
): Statement[] {
  const connection: [string, Value, Value?][] = [
    ['MASTER_HOST', source.host],
    ['MASTER_PORT', source.port],
    ['MASTER_USER', source.user],
    ['MASTER_PASSWORD', source.password, MASK],
    ['MASTER_CONNECT_RETRY', source.connectRetrySeconds],
  ];
  if (needsPublicKeyFetch(version)) connection.push(['GET_MASTER_PUBLIC_KEY', 1]);
  const statements: Statement[] = [];

  if (coordinates.from === 'slave_info' && coordinates.mode === 'gtid') {
    if (coordinates.gtidVariable === 'gtid_purged') {
      // gtid_purged can only be set on an empty gtid_executed, which a restored clone is not.
      statements.push(render(hasResetBinaryLogsAndGtids(version) ? 'RESET BINARY LOGS AND GTIDS' : 'RESET MASTER', []));
    }
    statements.push(render(`SET GLOBAL ${coordinates.gtidVariable} = ?`, [coordinates.gtid]));
    const gtidOption: [string, Value] =
      version.flavor === 'mariadb' ? ['MASTER_USE_GTID', raw('slave_pos')] : ['MASTER_AUTO_POSITION', 1];
    statements.push(change(version, [...connection, gtidOption]));
  } else {
    const { file, pos } = coordinates.position;
    statements.push(change(version, [...connection, ['MASTER_LOG_FILE', file], ['MASTER_LOG_POS', pos]]));
  }
  statements.push(render(hasReplicaKeyword(version) ? 'START REPLICA' : 'START SLAVE', []));
  return statements;
}

/** The status query of the dialect. */
export function replicaStatusQuery(version: ServerVersion): string {
  return hasReplicaKeyword(version) ? 'SHOW REPLICA STATUS' : 'SHOW SLAVE STATUS';
}
