/** `mysql-agent sidecar`: the settings it reads and the frozen config they make. */
import { CONF_DIR, DATA_DIR, LOG_LEVEL, PEER_HOST_TEMPLATE, POD_NAME, type PodConfig, SERVER_ID_OFFSET, SERVICE_NAME, readPeerHosts, readPod, readServerId } from '../core/pod-settings.js';
import { type CommandSpec, host, wholeNumber } from '../core/settings.js';
import { type ClientAuth, TLS_CLIENT_AUTH, TLS_DIR, type TlsDir, readTlsDir } from '../core/tls.js';
import type { RequestedMode } from '../mysql/replication-sql.js';
import { REPLICATION_MODE, SERVER_ACCESS, type ServerAccess, readServerAccess } from '../mysql/settings.js';
import { STORE_SETTINGS, type StoreConfig, readStore } from '../store/settings.js';
import { BACKUP_AUTH, BACKUP_PORT, BACKUP_TOKEN, XTRABACKUP_ARGS, XTRABACKUP_BIN, ZSTD_BIN, findTool, readToken } from '../stream/settings.js';

export interface SidecarConfig extends PodConfig, ServerAccess {
  readonly command: 'sidecar';
  readonly serverId: number;
  readonly confDir: string;
  readonly dataDir: string;
  readonly backup: {
    readonly bind: string;
    readonly port: number;
    /** null only when BACKUP_AUTH=none. */
    readonly token: string | null;
    readonly idleTimeoutMs: number;
    /** MB/s cap on the bytes a backup puts on the wire; null: none. */
    readonly maxRateMbS: number | null;
  };
  /** HTTPS only, from TLS_DIR; null: plain HTTP. */
  readonly tls: { readonly dir: TlsDir; readonly clientAuth: ClientAuth } | null;
  /** zstd '' when none is installed: backups are then served raw. */
  readonly tools: { readonly backup: string; readonly extraArgs: readonly string[]; readonly zstd: string };
  /** A replica is ready only while it is at most this many seconds behind. */
  readonly readyMaxLagSeconds: number;
  readonly replicationMode: RequestedMode;
  /** The primary's binary logs archived to the store; null: no store, or a replica. */
  readonly archive: { readonly store: StoreConfig; readonly intervalMs: number } | null;
}

export const BACKUP_BIND = host('BACKUP_BIND', 'address the sidecar serves on; :: is every address of both families', '::');
export const BACKUP_IDLE_TIMEOUT = wholeNumber('BACKUP_IDLE_TIMEOUT', 'seconds a backup client may read nothing before the backup is ended', 120, 1, 24 * 3600, 1000);
export const BACKUP_MAX_RATE = wholeNumber('BACKUP_MAX_RATE', 'MB/s cap on the bytes a backup sends, whoever asks (0: none)', 0, 0, 100_000);
export const READY_MAX_LAG = wholeNumber('READY_MAX_LAG', 'a replica is ready only while at most this many seconds behind', 30, 0, 7 * 24 * 3600);

export const BINLOG_ARCHIVE_INTERVAL = wholeNumber(
  'BINLOG_ARCHIVE_INTERVAL',
  "primary with BACKUP_STORE_URL: seconds an event may wait in the open binary log before it is rotated (FLUSH BINARY LOGS) and archived",
  60,
  5,
  24 * 3600,
  1000,
);

export const sidecarCommand: CommandSpec<SidecarConfig> = {
  name: 'sidecar',
  summary: 'Configures replication once from the clone, then serves /backup, /healthz, /readyz, /status and /metrics.',
  settings: [
    POD_NAME, SERVER_ID_OFFSET, CONF_DIR, DATA_DIR, SERVICE_NAME, PEER_HOST_TEMPLATE, ...SERVER_ACCESS,
    BACKUP_BIND, BACKUP_PORT, BACKUP_TOKEN, BACKUP_AUTH, BACKUP_IDLE_TIMEOUT, BACKUP_MAX_RATE, XTRABACKUP_BIN, XTRABACKUP_ARGS, ZSTD_BIN,
    READY_MAX_LAG, REPLICATION_MODE, TLS_DIR, TLS_CLIENT_AUTH, ...STORE_SETTINGS, BINLOG_ARCHIVE_INTERVAL, LOG_LEVEL,
  ],
  build: (read, sources) => {
    const pod = readPod(read, sources.hostname);
    const tlsDir = readTlsDir(read, ['cert', 'key', 'ca']);
    const clientAuth = read.get(TLS_CLIENT_AUTH);
    if (clientAuth === 'require' && tlsDir === null) {
      read.problem('TLS_CLIENT_AUTH=require needs TLS_DIR: client certificates are checked against its ca.crt; set TLS_DIR, or TLS_CLIENT_AUTH=none');
    }
    const store = readStore(read, false);
    const intervalMs = read.get(BINLOG_ARCHIVE_INTERVAL);
    return {
      command: 'sidecar',
      ...pod,
      serverId: readServerId(read, pod.ordinal),
      confDir: read.get(CONF_DIR),
      dataDir: read.get(DATA_DIR),
      ...readServerAccess(read, readPeerHosts(read, pod), tlsDir),
      tls: tlsDir === null ? null : { dir: tlsDir, clientAuth },
      backup: {
        bind: read.get(BACKUP_BIND),
        port: read.get(BACKUP_PORT),
        token: readToken(read, true),
        idleTimeoutMs: read.get(BACKUP_IDLE_TIMEOUT),
        maxRateMbS: read.get(BACKUP_MAX_RATE) || null,
      },
      tools: { backup: findTool(read, sources, 'backup', true), extraArgs: read.get(XTRABACKUP_ARGS), zstd: findTool(read, sources, 'zstd', false) },
      readyMaxLagSeconds: read.get(READY_MAX_LAG),
      replicationMode: read.get(REPLICATION_MODE),
      archive: store !== null && pod.role === 'primary' ? { store, intervalMs } : null,
    };
  },
};
