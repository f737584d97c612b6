/**
 * agent/backup/ holds the commands that work on the object store from outside the pods: `backup`
 * (one backup now), `backups` (the list) and `verify-backup` (the restore drill). It stands
 * above init/ because a backup picks its source with the clone's own ranking and reads a
 * sidecar's stream the way a clone does, and a drill restores the way init does.
 *
 * Their settings and the frozen configs they make.
 */
import { hostname } from 'node:os';
import { ConfigError } from '../core/errors.js';
import { LOG_LEVEL, PEER_HOST_TEMPLATE, SERVICE_NAME, checkPeerHost } from '../core/pod-settings.js';
import { type CommandSpec, type Setting, type SettingsReader, directory, switchFlag, isHost, text } from '../core/settings.js';
import { TLS_DIR, type TlsDir, readTlsDir } from '../core/tls.js';
import type { PeerHosts } from '../core/topology.js';
import { PEER_STATUS_TIMEOUT } from '../cluster/settings.js';
import type { StreamTimeouts } from '../init/clone-attempt.js';
import { CLONE_CONNECT_TIMEOUT, CLONE_FIRST_BYTE_TIMEOUT, CLONE_IDLE_TIMEOUT, CLONE_MAX_LAG, PEER_PROBE_COUNT } from '../init/settings.js';
import { BACKUP_COMPRESSION, BACKUP_KEEP, STORE_SETTINGS, type StoreConfig, readStore } from '../store/settings.js';
import type { Compression } from '../stream/compression.js';
import { type BackupId, isBackupId } from '../store/layout.js';
import { BACKUP_AUTH, BACKUP_PORT, BACKUP_TOKEN, MYSQLD_BIN, XBSTREAM_BIN, XTRABACKUP_BIN, ZSTD_BIN, findTool, readToken } from '../stream/settings.js';

/** BACKUP_SOURCE: the clone's ranking, the primary, or one host. */
export type BackupSourceChoice = { readonly kind: 'auto' } | { readonly kind: 'primary' } | { readonly kind: 'host'; readonly host: string };

/** What every store command's config carries for the CLI's logger. */
interface StoreCommandBase {
  readonly podName: string;
  readonly logLevel: string;
  readonly store: StoreConfig;
}

export interface BackupConfig extends StoreCommandBase {
  readonly command: 'backup';
  readonly peerHosts: PeerHosts;
  readonly backup: { readonly port: number; readonly token: string | null };
  /** TLS_DIR: the sources' agents are asked over HTTPS, verified against its ca.crt. */
  readonly tls: TlsDir | null;
  readonly source: {
    readonly choice: BackupSourceChoice;
    readonly maxLagSeconds: number;
    readonly probeCount: number;
    readonly statusTimeoutMs: number;
    /** The clone's clocks: a backup reads a sidecar's stream the way a clone does. */
    readonly timeouts: StreamTimeouts;
  };
  readonly compression: Compression;
  readonly keep: number;
}

export interface BackupsConfig extends StoreCommandBase {
  readonly command: 'backups';
  readonly json: boolean;
}

export const STATEFULSET_NAME: Setting<string> = {
  ...text('STATEFULSET_NAME', "the StatefulSet's name: {set} in PEER_HOST_TEMPLATE", 'mysql'),
  parse: (t) => {
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(t)) throw new ConfigError(`STATEFULSET_NAME="${t}" is invalid: expected a Kubernetes object name`);
    return t;
  },
};
export const BACKUP_SOURCE: Setting<BackupSourceChoice> = {
  name: 'BACKUP_SOURCE',
  help: 'auto (a caught-up, free replica, else the primary), primary, or the host of a peer agent',
  shown: 'auto',
  fallback: { kind: 'auto' },
  parse: (t) => {
    if (t === 'auto' || t === 'primary') return { kind: t };
    if (!isHost(t)) throw new ConfigError(`BACKUP_SOURCE="${t}" is invalid: expected auto, primary, or the host name of a peer's agent`);
    return { kind: 'host', host: t };
  },
};
export const JSON_OUTPUT = switchFlag('JSON', 'print JSON instead of a table');
export const BACKUP_ID: Setting<BackupId | null> = {
  name: 'BACKUP_ID',
  help: 'the backup to verify (see mysql-agent backups)',
  shown: '(the newest complete one)',
  fallback: null,
  parse: (t) => {
    if (!isBackupId(t)) throw new ConfigError(`BACKUP_ID="${t}" is invalid: expected a backup id such as 20261201T101530.123Z-3fa9c1 (see mysql-agent backups)`);
    return t;
  },
};
export const DRILL_DIR = directory('DRILL_DIR', 'where the drill restores (a scratch directory is made in it and removed after)', '/tmp');

export interface VerifyConfig extends StoreCommandBase {
  readonly command: 'verify-backup';
  readonly backupId: BackupId | null;
  readonly drillDir: string;
  /** zstd '' when none is installed (the agent decompresses). */
  readonly tools: { readonly backup: string; readonly stream: string; readonly server: string; readonly zstd: string };
}

function readBase(read: SettingsReader): StoreCommandBase {
  return { podName: hostname(), logLevel: read.get(LOG_LEVEL), store: readStore(read, true) ?? { bucket: '', prefix: '', endpoint: null, region: '', forcePathStyle: false } };
}

export const backupCommand: CommandSpec<BackupConfig> = {
  name: 'backup',
  summary: 'Takes one backup now: streams GET /backup of the chosen source into the object store, manifest last;\nprints the backup id, then deletes complete backups beyond BACKUP_KEEP.',
  settings: [
    ...STORE_SETTINGS, BACKUP_COMPRESSION, BACKUP_KEEP, BACKUP_SOURCE,
    STATEFULSET_NAME, SERVICE_NAME, PEER_HOST_TEMPLATE, BACKUP_PORT, BACKUP_TOKEN, BACKUP_AUTH, TLS_DIR,
    CLONE_MAX_LAG, PEER_STATUS_TIMEOUT, PEER_PROBE_COUNT, CLONE_CONNECT_TIMEOUT, CLONE_FIRST_BYTE_TIMEOUT, CLONE_IDLE_TIMEOUT, LOG_LEVEL,
  ],
  build: (read) => {
    const peerHosts: PeerHosts = { template: read.get(PEER_HOST_TEMPLATE), set: read.get(STATEFULSET_NAME), service: read.get(SERVICE_NAME) };
    checkPeerHost(read, peerHosts, 0);
    return {
      command: 'backup',
      ...readBase(read),
      peerHosts,
      backup: { port: read.get(BACKUP_PORT), token: readToken(read, true) },
      // A client certificate too when the Job mounts one (TLS_CLIENT_AUTH=require on the sidecars).
      tls: readTlsDir(read, ['ca']),
      source: {
        choice: read.get(BACKUP_SOURCE),
        maxLagSeconds: read.get(CLONE_MAX_LAG),
        probeCount: read.get(PEER_PROBE_COUNT),
        statusTimeoutMs: read.get(PEER_STATUS_TIMEOUT),
        timeouts: { connectMs: read.get(CLONE_CONNECT_TIMEOUT), firstByteMs: read.get(CLONE_FIRST_BYTE_TIMEOUT), idleMs: read.get(CLONE_IDLE_TIMEOUT) },
      },
      compression: read.get(BACKUP_COMPRESSION),
      keep: read.get(BACKUP_KEEP),
    };
  },
};

export const backupsCommand: CommandSpec<BackupsConfig> = {
  name: 'backups',
  summary: 'Lists the complete backups in the object store, newest first (a table, or JSON with --json).',
  settings: [...STORE_SETTINGS, JSON_OUTPUT, LOG_LEVEL],
  build: (read) => ({ command: 'backups', ...readBase(read), json: read.get(JSON_OUTPUT) }),
};

export const verifyBackupCommand: CommandSpec<VerifyConfig> = {
  name: 'verify-backup',
  summary:
    'The restore drill: restores a backup into a scratch directory (hash checked), prepares it, starts a throwaway\nserver on loopback, runs CHECK TABLE and counts rows in every table, and writes the verdict beside the manifest.',
  settings: [...STORE_SETTINGS, BACKUP_ID, DRILL_DIR, MYSQLD_BIN, XTRABACKUP_BIN, XBSTREAM_BIN, ZSTD_BIN, LOG_LEVEL],
  build: (read, sources) => ({
    command: 'verify-backup',
    ...readBase(read),
    backupId: read.get(BACKUP_ID),
    drillDir: read.get(DRILL_DIR),
    tools: {
      backup: findTool(read, sources, 'backup', true),
      stream: findTool(read, sources, 'stream', true),
      server: findTool(read, sources, 'server', true),
      zstd: findTool(read, sources, 'zstd', false),
    },
  }),
};
