/** `mysql-agent init`: the settings it reads and the frozen config they make. */
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { PEER_STATUS_TIMEOUT } from '../cluster/settings.js';
import { CONF_DIR, DATA_DIR, LOG_LEVEL, PEER_HOST_TEMPLATE, POD_NAME, type PodConfig, SERVER_ID_OFFSET, SERVICE_NAME, readPeerHosts, readPod, readServerId } from '../core/pod-settings.js';
import { ConfigError } from '../core/errors.js';
import { type CommandSpec, type Setting, type SettingsReader, directory, isHost, oneOf, wholeNumber } from '../core/settings.js';
import { TLS_DIR, type TlsDir, readTlsDir } from '../core/tls.js';
import type { PeerHosts } from '../core/topology.js';
import { AUTO_ZSTD_BELOW_MB_S, type StreamTimeouts } from './clone-attempt.js';
import type { RequestedMode } from '../mysql/replication-sql.js';
import type { KubernetesApi } from './volume-claims.js';
import { REPLICATION_MODE } from '../mysql/settings.js';
import { type BackupId, isBackupId } from '../store/layout.js';
import { STORE_SETTINGS, type StoreConfig, readStore } from '../store/settings.js';
import type { Compression } from '../stream/compression.js';
import { BACKUP_AUTH, BACKUP_PORT, BACKUP_TOKEN, MYSQLBINLOG_BIN, MYSQLD_BIN, MYSQL_BIN, XBSTREAM_BIN, XTRABACKUP_BIN, ZSTD_BIN, findTool, readToken } from '../stream/settings.js';

/** CLONE_SOURCE: probe the lower ordinals and pick (auto), or a fixed peer. */
export type CloneSourceChoice =
  | { readonly kind: 'auto' }
  /** The newest complete backup in the object store, then replication by GTID from its coordinates. */
  | { readonly kind: 'backup' }
  | { readonly kind: 'previous' }
  | { readonly kind: 'primary' }
  | { readonly kind: 'host'; readonly host: string };

/** PRIMARY_EMPTY_START: what ordinal 0 does with an empty datadir while replicas hold data. */
export type PrimaryEmptyStart = 'refuse' | 'allow' | 'recover';

/** VOLUME_CLAIMS: where ordinal 0 learns which replicas have a data volume. */
export type VolumeClaims =
  | { readonly kind: 'kubernetes'; readonly template: string; readonly api: KubernetesApi }
  | { readonly kind: 'none' };

export interface InitConfig extends PodConfig {
  readonly command: 'init';
  readonly serverId: number;
  readonly configMapDir: string;
  readonly confDir: string;
  readonly dataDir: string;
  readonly peerHosts: PeerHosts;
  /** The peers' backup port, and the token to fetch with (null: BACKUP_AUTH=none, or not needed). */
  readonly backup: { readonly port: number; readonly token: string | null };
  /** Peers are asked over HTTPS, verified against its ca.crt, this pod's certificate presented; null: plain HTTP. */
  readonly tls: TlsDir | null;
  /** '' when this start clones nothing; server, binlog and client only for a point-in-time restore; zstd '' when none is installed. */
  readonly tools: { readonly backup: string; readonly stream: string; readonly server: string; readonly binlog: string; readonly client: string; readonly zstd: string };
  readonly clone: {
    /** Stop retrying (refused, busy, broken stream) once this much time has passed since start. */
    readonly retryDeadlineMs: number;
    readonly retryMaxDelayMs: number;
    readonly timeouts: StreamTimeouts;
    /** What the stream is asked to come compressed with. */
    readonly compression: Compression | 'auto';
    /** MB/s read off the wire, or null. */
    readonly maxRateMbS: number | null;
    /** CLONE_COMPRESSION_AUTO_BELOW: MB/s under which `auto` asks for zstd. */
    readonly autoZstdBelowMbS: number;
  };
  /** On a replica: where to clone from, and how far behind a replica source may be. */
  readonly cloneSource: { readonly choice: CloneSourceChoice; readonly maxLagSeconds: number };
  /** Asking peers' agents for /status: the timeout, and how many replica ordinals ordinal 0 asks. */
  readonly peers: { readonly statusTimeoutMs: number; readonly probeCount: number };
  /** At ordinal 0 with an empty datadir while replicas hold data. */
  readonly primaryEmptyStart: PrimaryEmptyStart;
  readonly replicationMode: RequestedMode;
  /** Ordinal 0 with an empty datadir: where the replicas' volume claims are read (null on a replica). */
  readonly volumeClaims: VolumeClaims | null;
  /** Ordinal 0 with an empty datadir and no replica holding data: the backup to restore, or null to start empty. */
  readonly restoreFrom: RestoreFrom | null;
  /** With RESTORE_FROM=latest: replay the archived binary logs up to this point; null: the backup as it is. */
  readonly restoreTo: RestorePoint | null;
  /** The object store; null unless RESTORE_FROM or CLONE_SOURCE=backup needs it. */
  readonly store: StoreConfig | null;
}

/** RESTORE_TO / RESTORE_TO_GTID: the point a restore replays the archived binary logs up to. */
export type RestorePoint = { readonly time: number } | { readonly gtid: string };

/** RESTORE_FROM: the newest complete backup, or one by id. */
export type RestoreFrom = { readonly kind: 'latest' } | { readonly kind: 'id'; readonly id: BackupId };

const DAY = 24 * 3600;
const WEEK = 7 * DAY;

export const CONFIG_MAP_DIR = directory('CONFIG_MAP_DIR', 'holds primary.cnf and replica.cnf (or master.cnf / slave.cnf)', '/mnt/config-map');
export const CLONE_RETRY_DEADLINE = wholeNumber('CLONE_RETRY_DEADLINE', 'seconds init keeps retrying a refused, busy or broken clone', 600, 0, WEEK, 1000);
export const CLONE_RETRY_MAX_DELAY = wholeNumber('CLONE_RETRY_MAX_DELAY', 'longest wait in seconds between clone attempts', 30, 1, 3600, 1000);
export const CLONE_CONNECT_TIMEOUT = wholeNumber('CLONE_CONNECT_TIMEOUT', 'seconds a peer may take to accept the connection', 10, 1, 3600, 1000);
export const CLONE_FIRST_BYTE_TIMEOUT = wholeNumber(
  'CLONE_FIRST_BYTE_TIMEOUT',
  "seconds from the connection to the backup's first byte (the tool may first wait for a lock behind a long ALTER)",
  1800,
  1,
  WEEK,
  1000,
);
export const CLONE_IDLE_TIMEOUT = wholeNumber('CLONE_IDLE_TIMEOUT', 'seconds a peer may send nothing mid-stream', 600, 1, WEEK, 1000);
/** CLONE_COMPRESSION: `auto` times the link and asks for zstd below CLONE_COMPRESSION_AUTO_BELOW (clone-attempt.ts). */
export const CLONE_COMPRESSION = oneOf<Compression | 'auto'>('CLONE_COMPRESSION', 'zstd asks the peer to compress the stream on the wire; none; auto (zstd when the link times below CLONE_COMPRESSION_AUTO_BELOW)', ['auto', 'zstd', 'none'], 'auto');
export const CLONE_COMPRESSION_AUTO_BELOW = wholeNumber('CLONE_COMPRESSION_AUTO_BELOW', 'MB/s: CLONE_COMPRESSION=auto asks for zstd when the link times below this', AUTO_ZSTD_BELOW_MB_S, 1, 100_000);
export const CLONE_MAX_RATE = wholeNumber('CLONE_MAX_RATE', 'MB/s cap on the bytes a clone reads off the wire (0: none)', 0, 0, 100_000);
export const CLONE_SOURCE: Setting<CloneSourceChoice> = {
  name: 'CLONE_SOURCE',
  help: 'auto (a caught-up replica of a lower ordinal, else the primary), previous, primary, backup (the newest in the object store), or a host',
  shown: 'auto',
  fallback: { kind: 'auto' },
  parse: (t) => {
    if (t === 'auto' || t === 'previous' || t === 'primary' || t === 'backup') return { kind: t };
    if (!isHost(t)) throw new ConfigError(`CLONE_SOURCE="${t}" is invalid: expected auto, previous, primary, backup, or the host name of a peer's agent`);
    return { kind: 'host', host: t };
  },
};
export const CLONE_MAX_LAG = wholeNumber('CLONE_MAX_LAG', 'auto: seconds a replica may be behind and still be cloned from', 60, 0, WEEK);
export const PEER_PROBE_COUNT = wholeNumber('PEER_PROBE_COUNT', 'ordinal 0 with an empty datadir: how many replica ordinals (1..N) to ask whether they hold data', 5, 1, 1000);
export const PRIMARY_EMPTY_START = oneOf<PrimaryEmptyStart>(
  'PRIMARY_EMPTY_START',
  'ordinal 0 with an empty datadir while replicas hold data: refuse, allow, or recover (clone from the most advanced replica; GTID only)',
  ['refuse', 'allow', 'recover'],
  'refuse',
);
export const VOLUME_CLAIMS = oneOf(
  'VOLUME_CLAIMS',
  "ordinal 0 with an empty datadir: kubernetes (read the replicas' PersistentVolumeClaims from the API) or none (no API: only the agents' answers count)",
  ['kubernetes', 'none'],
  'kubernetes',
);
export const VOLUME_CLAIM_TEMPLATE: Setting<string> = {
  name: 'VOLUME_CLAIM_TEMPLATE',
  help: "the StatefulSet's volumeClaimTemplate of DATA_DIR: ordinal N's claim is <template>-<set>-N",
  shown: 'data',
  fallback: 'data',
  parse: (t) => {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(t) || t.length > 63) {
      throw new ConfigError(`VOLUME_CLAIM_TEMPLATE="${t}" is invalid: expected the name of a volumeClaimTemplate (lower-case letters, digits, '-')`);
    }
    return t;
  },
};
/** Set by the kubelet in every container; an IPv6 literal in IPv6 clusters. */
export const KUBERNETES_SERVICE_HOST: Setting<string | null> = {
  name: 'KUBERNETES_SERVICE_HOST',
  help: "the Kubernetes API's address (the kubelet sets it)",
  fallback: null,
  parse: (t) => {
    if (isIP(t) === 0 && !isHost(t)) throw new ConfigError(`KUBERNETES_SERVICE_HOST="${t}" is invalid: expected an IP address or a host name`);
    return t;
  },
};
export const KUBERNETES_SERVICE_PORT = wholeNumber('KUBERNETES_SERVICE_PORT', "the Kubernetes API's port (the kubelet sets it)", 443, 1, 65535);
export const SERVICE_ACCOUNT_DIR = directory(
  'SERVICE_ACCOUNT_DIR',
  "where the pod's service account token, ca.crt and namespace are mounted",
  '/var/run/secrets/kubernetes.io/serviceaccount',
);

/** VOLUME_CLAIMS and the API's address: read by ordinal 0 only (null on a replica, which never asks). */
function readVolumeClaims(read: SettingsReader, pod: PodConfig): VolumeClaims | null {
  const kind = read.get(VOLUME_CLAIMS);
  const template = read.get(VOLUME_CLAIM_TEMPLATE);
  const host = read.get(KUBERNETES_SERVICE_HOST);
  const api = { port: read.get(KUBERNETES_SERVICE_PORT), serviceAccountDir: read.get(SERVICE_ACCOUNT_DIR) };
  if (pod.ordinal !== 0) return null;
  if (kind === 'none') return { kind };
  if (!read.isSet(KUBERNETES_SERVICE_HOST)) {
    read.problem(
      "KUBERNETES_SERVICE_HOST is not set: ordinal 0 reads the replicas' volume claims from the Kubernetes API (VOLUME_CLAIMS=kubernetes), whose address the kubelet sets; outside Kubernetes set VOLUME_CLAIMS=none",
    );
  }
  return { kind, template, api: { host: host ?? '', ...api } };
}

export const RESTORE_FROM: Setting<RestoreFrom | null> = {
  name: 'RESTORE_FROM',
  help: 'ordinal 0 with an empty datadir and no replica holding data: latest, or a backup id, to restore instead of starting empty',
  fallback: null,
  parse: (t) => {
    if (t === 'latest') return { kind: 'latest' };
    if (!isBackupId(t)) throw new ConfigError(`RESTORE_FROM="${t}" is invalid: expected latest or a backup id such as 20261201T101530.123Z-3fa9c1 (see mysql-agent backups)`);
    return { kind: 'id', id: t };
  },
};

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
export const RESTORE_TO: Setting<number | null> = {
  name: 'RESTORE_TO',
  help: 'with RESTORE_FROM=latest: an RFC 3339 time (2026-12-01T10:41:59Z, or with an offset); every transaction committed in or before that second is restored, none after',
  fallback: null,
  parse: (t) => {
    const ms = Date.parse(t);
    if (!RFC3339.test(t) || Number.isNaN(ms)) throw new ConfigError(`RESTORE_TO="${t}" is invalid: expected an RFC 3339 time with its zone, such as 2026-12-01T10:41:59Z`);
    return Math.floor(ms / 1000);
  },
};
export const RESTORE_TO_GTID: Setting<string | null> = {
  name: 'RESTORE_TO_GTID',
  help: 'with RESTORE_FROM=latest: a MariaDB GTID state (0-100-1234[,…]); the restore stops after that transaction',
  fallback: null,
  parse: (t) => {
    if (!/^\d+-\d+-\d+(,\d+-\d+-\d+)*$/.test(t)) throw new ConfigError(`RESTORE_TO_GTID="${t}" is invalid: expected a MariaDB GTID state such as 0-100-1234 (domain-server-sequence, comma-separated)`);
    return t;
  },
};

/** RESTORE_TO or RESTORE_TO_GTID, at most one, and only with RESTORE_FROM=latest (the backup is chosen by the point). */
export function readRestorePoint(read: SettingsReader, restoreFrom: RestoreFrom | null, requireFrom: boolean): RestorePoint | null {
  const time = read.get(RESTORE_TO);
  const gtid = read.get(RESTORE_TO_GTID);
  if (time !== null && gtid !== null) {
    read.problem('RESTORE_TO and RESTORE_TO_GTID are both set: give the point as one of them');
    return null;
  }
  const point = time !== null ? { time } : gtid !== null ? { gtid } : null;
  if (point !== null && requireFrom && restoreFrom?.kind !== 'latest') {
    read.problem(`${time !== null ? 'RESTORE_TO' : 'RESTORE_TO_GTID'} needs RESTORE_FROM=latest: the newest complete backup before the point is chosen for it`);
  }
  return point;
}

/** `mysql-agent restore-plan`: what a RESTORE_TO / RESTORE_TO_GTID restore would use. */
export interface RestorePlanConfig {
  readonly command: 'restore-plan';
  readonly podName: string;
  readonly logLevel: PodConfig['logLevel'];
  readonly store: StoreConfig;
  readonly point: RestorePoint;
}

export const restorePlanCommand: CommandSpec<RestorePlanConfig> = {
  name: 'restore-plan',
  summary:
    'Prints (JSON) what RESTORE_FROM=latest with RESTORE_TO or RESTORE_TO_GTID would restore: the backup, the archived\nbinary logs and the last event applied; a point past a gap or past the newest archived event is refused (exit 1).',
  settings: [RESTORE_TO, RESTORE_TO_GTID, ...STORE_SETTINGS, LOG_LEVEL],
  build: (read) => {
    const store = readStore(read, true);
    const point = readRestorePoint(read, null, false);
    if (point === null && !read.isSet(RESTORE_TO) && !read.isSet(RESTORE_TO_GTID)) read.problem('restore-plan needs the point: set RESTORE_TO (an RFC 3339 time) or RESTORE_TO_GTID');
    return {
      command: 'restore-plan',
      podName: hostname(),
      logLevel: read.get(LOG_LEVEL),
      store: store ?? { bucket: '', prefix: '', endpoint: null, region: '', forcePathStyle: false },
      point: point ?? { gtid: '' },
    };
  },
};

export const initCommand: CommandSpec<InitConfig> = {
  name: 'init',
  summary:
    'Writes server-id.cnf and the role config, then clones an empty replica datadir from the best peer;\nat ordinal 0 with an empty datadir, first checks that no replica holds data (PRIMARY_EMPTY_START).',
  settings: [
    POD_NAME, SERVER_ID_OFFSET, CONFIG_MAP_DIR, CONF_DIR, DATA_DIR, SERVICE_NAME, PEER_HOST_TEMPLATE,
    BACKUP_PORT, BACKUP_TOKEN, BACKUP_AUTH, XTRABACKUP_BIN, XBSTREAM_BIN, ZSTD_BIN,
    CLONE_RETRY_DEADLINE, CLONE_RETRY_MAX_DELAY, CLONE_CONNECT_TIMEOUT, CLONE_FIRST_BYTE_TIMEOUT, CLONE_IDLE_TIMEOUT, CLONE_COMPRESSION, CLONE_COMPRESSION_AUTO_BELOW, CLONE_MAX_RATE, CLONE_SOURCE, CLONE_MAX_LAG, PEER_STATUS_TIMEOUT, PEER_PROBE_COUNT,
    PRIMARY_EMPTY_START, REPLICATION_MODE, VOLUME_CLAIMS, VOLUME_CLAIM_TEMPLATE, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT,
    SERVICE_ACCOUNT_DIR, TLS_DIR, RESTORE_FROM, RESTORE_TO, RESTORE_TO_GTID, MYSQLD_BIN, MYSQLBINLOG_BIN, MYSQL_BIN, ...STORE_SETTINGS, LOG_LEVEL,
  ],
  build: (read, sources) => {
    const pod = readPod(read, sources.hostname);
    const primaryEmptyStart = read.get(PRIMARY_EMPTY_START);
    const restoreFrom = read.get(RESTORE_FROM);
    const cloneSource = read.get(CLONE_SOURCE);
    // init clones on a replica, and on ordinal 0 when it may recover from a replica.
    const clones = pod.ordinal !== 0 || primaryEmptyStart === 'recover';
    // The store is needed for a restore at ordinal 0, or a replica seeded from it.
    const usesStore = (pod.ordinal === 0 && restoreFrom !== null) || (pod.ordinal !== 0 && cloneSource.kind === 'backup');
    const store = readStore(read, usesStore);
    // Read on every ordinal (a bad value is named anywhere), used only at ordinal 0.
    const point = readRestorePoint(read, restoreFrom, pod.ordinal === 0);
    const restoreTo = pod.ordinal === 0 ? point : null;
    const replays = restoreTo !== null;
    return {
      command: 'init',
      ...pod,
      serverId: readServerId(read, pod.ordinal),
      configMapDir: read.get(CONFIG_MAP_DIR),
      confDir: read.get(CONF_DIR),
      dataDir: read.get(DATA_DIR),
      peerHosts: readPeerHosts(read, pod),
      backup: { port: read.get(BACKUP_PORT), token: readToken(read, clones) },
      tls: readTlsDir(read, ['cert', 'key', 'ca']),
      tools: {
        backup: findTool(read, sources, 'backup', clones || usesStore),
        stream: findTool(read, sources, 'stream', clones || usesStore),
        server: findTool(read, sources, 'server', replays),
        binlog: findTool(read, sources, 'binlog', replays),
        client: findTool(read, sources, 'client', replays),
        zstd: findTool(read, sources, 'zstd', false),
      },
      clone: {
        retryDeadlineMs: read.get(CLONE_RETRY_DEADLINE),
        retryMaxDelayMs: read.get(CLONE_RETRY_MAX_DELAY),
        timeouts: { connectMs: read.get(CLONE_CONNECT_TIMEOUT), firstByteMs: read.get(CLONE_FIRST_BYTE_TIMEOUT), idleMs: read.get(CLONE_IDLE_TIMEOUT) },
        compression: read.get(CLONE_COMPRESSION),
        maxRateMbS: read.get(CLONE_MAX_RATE) || null,
        autoZstdBelowMbS: read.get(CLONE_COMPRESSION_AUTO_BELOW),
      },
      cloneSource: { choice: cloneSource, maxLagSeconds: read.get(CLONE_MAX_LAG) },
      peers: { statusTimeoutMs: read.get(PEER_STATUS_TIMEOUT), probeCount: read.get(PEER_PROBE_COUNT) },
      primaryEmptyStart,
      replicationMode: read.get(REPLICATION_MODE),
      volumeClaims: readVolumeClaims(read, pod),
      restoreFrom,
      restoreTo,
      store: usesStore ? store : null,
    };
  },
};
