/**
 * The settings of the servers: the local one the agent (and the backup tool) connects to, the
 * primary replicas follow, the account they follow it with, and how (REPLICATION_MODE).
 * Shared by the sidecar and `plan`; init reads only REPLICATION_MODE.
 */
import { type SettingsReader, account, host, oneOf, secret, wholeNumber } from '../core/settings.js';
import { type TlsDir, tlsPaths } from '../core/tls.js';
import { type PeerHosts, hostOf } from '../core/topology.js';
import { REPLICATION_TLS_MODES, REQUESTED_MODES, type ReplicationTls } from './replication-sql.js';

export const PRIMARY_HOST = host('PRIMARY_HOST', 'replication source', '', '(the template at ordinal 0)');
export const MYSQL_HOST = host('MYSQL_HOST', 'the local server', '127.0.0.1');
export const MYSQL_PORT = wholeNumber('MYSQL_PORT', 'port of the local server and of the primary', 3306, 1, 65535);
export const MYSQL_USER = account('MYSQL_USER', 'account the agent and the backup tool use locally', 'root');
export const MYSQL_PASSWORD = secret('MYSQL_PASSWORD', 'its password', '(empty)');
export const REPLICATION_USER = account('REPLICATION_USER', 'user put into CHANGE MASTER', null, '(MYSQL_USER)');
export const REPLICATION_PASSWORD = secret('REPLICATION_PASSWORD', 'password put into CHANGE MASTER', '(MYSQL_PASSWORD)');
export const REPLICATION_MODE = oneOf('REPLICATION_MODE', 'auto, gtid or position: how a new replica follows the primary', REQUESTED_MODES, 'auto');
export const REPLICATION_TLS = oneOf(
  'REPLICATION_TLS',
  "off, required, verify-ca or verify-identity: the SSL options of CHANGE MASTER (the CA: TLS_DIR's ca.crt)",
  REPLICATION_TLS_MODES,
  'off',
);

/** The settings `readServerAccess` reads (and TLS_DIR, read by the command itself). */
export const SERVER_ACCESS = [PRIMARY_HOST, MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD, REPLICATION_USER, REPLICATION_PASSWORD, REPLICATION_TLS];

export interface ServerAccess {
  readonly primaryHost: string;
  readonly mysql: { readonly host: string; readonly port: number; readonly user: string; readonly password: string };
  readonly replication: { readonly user: string; readonly password: string; readonly tls: ReplicationTls };
}

/** REPLICATION_TLS, its CA from TLS_DIR (the servers mount the same Secret at the same path). */
function readReplicationTls(read: SettingsReader, tlsDir: string | null): ReplicationTls {
  const mode = read.get(REPLICATION_TLS);
  if ((mode === 'verify-ca' || mode === 'verify-identity') && tlsDir === null) {
    read.problem(`REPLICATION_TLS=${mode} needs TLS_DIR: its ca.crt is what the primary's certificate is checked against; set TLS_DIR, or REPLICATION_TLS=required to encrypt without checking`);
  }
  return { mode, caFile: tlsDir === null ? null : tlsPaths(tlsDir).ca };
}

export function readServerAccess(read: SettingsReader, hosts: PeerHosts, tls: Pick<TlsDir, 'dir'> | null): ServerAccess {
  const user = read.get(MYSQL_USER) ?? 'root';
  const password = read.get(MYSQL_PASSWORD) ?? '';
  return {
    primaryHost: read.get(PRIMARY_HOST) || hostOf(hosts, 0),
    mysql: { host: read.get(MYSQL_HOST), port: read.get(MYSQL_PORT), user, password },
    replication: { user: read.get(REPLICATION_USER) ?? user, password: read.get(REPLICATION_PASSWORD) ?? password, tls: readReplicationTls(read, tls?.dir ?? null) },
  };
}
