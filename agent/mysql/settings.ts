/**
 * The settings of the servers: the local one the agent (and the backup tool) connects to, the
 * primary replicas follow, the account they follow it with, and how (REPLICATION_MODE).
 * Shared by the sidecar and `plan`; init reads only REPLICATION_MODE.
 */
import { type SettingsReader, account, host, oneOf, secret, wholeNumber } from '../core/settings.js';
import { type PeerHosts, hostOf } from '../core/topology.js';
import { REQUESTED_MODES } from './replication-sql.js';

export const PRIMARY_HOST = host('PRIMARY_HOST', 'replication source', '', '(the template at ordinal 0)');
export const MYSQL_HOST = host('MYSQL_HOST', 'the local server', '127.0.0.1');
export const MYSQL_PORT = wholeNumber('MYSQL_PORT', 'port of the local server and of the primary', 3306, 1, 65535);
export const MYSQL_USER = account('MYSQL_USER', 'account the agent and the backup tool use locally', 'root');
export const MYSQL_PASSWORD = secret('MYSQL_PASSWORD', 'its password', '(empty)');
export const REPLICATION_USER = account('REPLICATION_USER', 'user put into CHANGE MASTER', null, '(MYSQL_USER)');
export const REPLICATION_PASSWORD = secret('REPLICATION_PASSWORD', 'password put into CHANGE MASTER', '(MYSQL_PASSWORD)');
export const REPLICATION_MODE = oneOf('REPLICATION_MODE', 'auto, gtid or position: how a new replica follows the primary', REQUESTED_MODES, 'auto');

/** The settings `readServerAccess` reads. */
export const SERVER_ACCESS = [PRIMARY_HOST, MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD, REPLICATION_USER, REPLICATION_PASSWORD];

export interface ServerAccess {
  readonly primaryHost: string;
  readonly mysql: { readonly host: string; readonly port: number; readonly user: string; readonly password: string };
  readonly replication: { readonly user: string; readonly password: string };
}

export function readServerAccess(read: SettingsReader, hosts: PeerHosts): ServerAccess {
  const user = read.get(MYSQL_USER) ?? 'root';
  const password = read.get(MYSQL_PASSWORD) ?? '';
  return {
    primaryHost: read.get(PRIMARY_HOST) || hostOf(hosts, 0),
    mysql: { host: read.get(MYSQL_HOST), port: read.get(MYSQL_PORT), user, password },
    replication: { user: read.get(REPLICATION_USER) ?? user, password: read.get(REPLICATION_PASSWORD) ?? password },
  };
}
