/**
 * The server versions the users run and, for each, the statements and words it does not have:
 * a plan, a hint or an error text for that server must never name them. Shared by the golden
 * plans and every test of a text that tells a person what to run.
 */
import type { ServerFacts } from '../agent/mysql/replication-sql.js';
import { parseServerVersion } from '../agent/mysql/server-version.js';

export const SERVERS: readonly (readonly [string, ServerFacts])[] = [
  ['MySQL 5.7.44, gtid_mode ON', { version: parseServerVersion('5.7.44-log'), gtidMode: true }],
  ['MySQL 8.0.21, gtid_mode ON', { version: parseServerVersion('8.0.21'), gtidMode: true }],
  ['MySQL 8.0.30, gtid_mode ON', { version: parseServerVersion('8.0.30'), gtidMode: true }],
  ['MySQL 8.4.3, gtid_mode ON', { version: parseServerVersion('8.4.3'), gtidMode: true }],
  ['MySQL 8.4.3, gtid_mode OFF', { version: parseServerVersion('8.4.3'), gtidMode: false }],
  ['MariaDB 10.11.9', { version: parseServerVersion('10.11.9-MariaDB'), gtidMode: true }],
  ['MariaDB 11.4.3', { version: parseServerVersion('11.4.3-MariaDB'), gtidMode: true }],
];

/** Statements each version does not have, by the prefix of its name in SERVERS. */
const LACKS: Readonly<Record<string, RegExp>> = {
  'MySQL 5.7.44': /CHANGE REPLICATION SOURCE|START REPLICA|STOP REPLICA|RESET REPLICA|SOURCE_|RESET BINARY LOGS|PUBLIC_KEY|gtid_slave_pos|gtid_binlog_state|MASTER_USE_GTID/,
  'MySQL 8.0.21': /CHANGE REPLICATION SOURCE|START REPLICA|STOP REPLICA|RESET REPLICA|SOURCE_|RESET BINARY LOGS|gtid_slave_pos|gtid_binlog_state|MASTER_USE_GTID/,
  'MySQL 8.0.30': /CHANGE MASTER|START SLAVE|STOP SLAVE|RESET SLAVE|MASTER_|RESET BINARY LOGS|gtid_slave_pos|gtid_binlog_state/,
  'MySQL 8.4.3': /CHANGE MASTER|START SLAVE|STOP SLAVE|RESET SLAVE|MASTER_|RESET MASTER|gtid_slave_pos|gtid_binlog_state/,
  MariaDB: /SOURCE|REPLICA|PUBLIC_KEY|AUTO_POSITION|gtid_purged|BINARY LOGS/,
};

/** What the server named `name` (a key of SERVERS) lacks. */
export function lacks(name: string): RegExp {
  const found = Object.entries(LACKS).find(([prefix]) => name.startsWith(prefix));
  if (!found) throw new Error(`no dialect rule for ${name}`);
  return found[1];
}
