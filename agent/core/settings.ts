/**
 * The one configuration object. Every setting comes from an environment variable, a kebab-case
 * flag of the same name overrides it, and everything is validated here, once, at start-up:
 * the rest of the agent receives a frozen `Config` and never reads the environment.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from './errors.js';
import { REQUESTED_MODES, type RequestedMode, type ServerFacts } from '../mysql/replication-sql.js';
import { type ServerVersion, parseServerVersion } from '../mysql/server-version.js';
import {
  type Ordinal,
  type Role,
  parsePodName,
  peerHost,
  roleOf,
  serverIdOf,
} from './topology.js';

export type Command = 'init' | 'sidecar' | 'plan';

/** CLONE_SOURCE: probe the lower ordinals and pick (auto), or a fixed peer. */
export type CloneSourceChoice =
  | { readonly kind: 'auto' }
  | { readonly kind: 'previous' }
  | { readonly kind: 'primary' }
  | { readonly kind: 'host'; readonly host: string };

/** PRIMARY_EMPTY_START: what ordinal 0 does with an empty datadir while replicas hold data. */
export type PrimaryEmptyStart = 'refuse' | 'allow' | 'recover';
const PRIMARY_EMPTY_STARTS: readonly PrimaryEmptyStart[] = ['refuse', 'allow', 'recover'];
const COMMANDS: readonly Command[] = ['init', 'sidecar', 'plan'];

export interface Config {
  readonly command: Command;
  readonly podName: string;
  readonly set: string;
  readonly ordinal: Ordinal;
  readonly role: Role;
  readonly serverId: number;
  readonly configMapDir: string;
  readonly confDir: string;
  readonly dataDir: string;
  /** Host of the agent (and server) at an ordinal, from PEER_HOST_TEMPLATE. */
  readonly peerHost: (ordinal: Ordinal) => string;
  readonly primaryHost: string;
  readonly mysql: { readonly host: string; readonly port: number; readonly user: string; readonly password: string };
  readonly replication: { readonly user: string; readonly password: string };
  readonly backup: {
    readonly bind: string;
    readonly port: number;
    /** null only when BACKUP_AUTH=none. */
    readonly token: string | null;
    readonly idleTimeoutMs: number;
  };
  readonly tools: {
    readonly backup: string;
    readonly stream: string;
    readonly extraArgs: readonly string[];
  };
  readonly clone: {
    /** Stop retrying (refused, busy, broken stream) once this much time has passed since start. */
    readonly retryDeadlineMs: number;
    readonly retryMaxDelayMs: number;
  };
  /** init on a replica: where to clone from (CLONE_SOURCE) and how far behind a replica source may be. */
  readonly cloneSource: { readonly choice: CloneSourceChoice; readonly maxLagSeconds: number };
  /** Asking peers' agents for /status: the timeout, and how many replica ordinals ordinal 0 asks. */
  readonly peers: { readonly statusTimeoutMs: number; readonly probeCount: number };
  /** init at ordinal 0 with an empty datadir while replicas hold data. */
  readonly primaryEmptyStart: PrimaryEmptyStart;
  /** A replica is ready only while it is at most this many seconds behind. */
  readonly readyMaxLagSeconds: number;
  readonly replicationMode: RequestedMode;
  /** `plan` only: a server described on the command line instead of a live one. */
  readonly offlineServer: ServerFacts | null;
  readonly logLevel: string;
}

interface Setting {
  readonly name: string;
  /** Shown in --help; `undefined` means "no default". */
  readonly default?: string;
  readonly help: string;
  /** The commands that read it; all when absent. */
  readonly only?: readonly Command[];
}

/** The table users read in --help and the README; the order is the order of --help. */
export const SETTINGS: readonly Setting[] = [
  { name: 'POD_NAME', default: '(the hostname)', help: 'pod name; the ordinal is its trailing -N' },
  { name: 'SERVER_ID_OFFSET', default: '100', help: 'server-id = offset + ordinal' },
  { name: 'CONFIG_MAP_DIR', default: '/mnt/config-map', help: 'holds primary.cnf and replica.cnf (or master.cnf / slave.cnf)' },
  { name: 'CONF_DIR', default: '/mnt/conf.d', help: "where server-id.cnf and the role's file are written" },
  { name: 'DATA_DIR', default: '/var/lib/mysql', help: 'the datadir' },
  { name: 'SERVICE_NAME', default: 'mysql', help: 'the headless Service' },
  { name: 'PEER_HOST_TEMPLATE', default: '{set}-{ordinal}.{service}', help: 'host of ordinal N' },
  { name: 'PRIMARY_HOST', default: '(the template at ordinal 0)', help: 'replication source' },
  { name: 'MYSQL_HOST', default: '127.0.0.1', help: 'the local server' },
  { name: 'MYSQL_PORT', default: '3306', help: 'port of the local server and of the primary' },
  { name: 'MYSQL_USER', default: 'root', help: 'account the agent and the backup tool use locally' },
  { name: 'MYSQL_PASSWORD', default: '(empty)', help: 'its password' },
  { name: 'REPLICATION_USER', default: '(MYSQL_USER)', help: 'user put into CHANGE MASTER' },
  { name: 'REPLICATION_PASSWORD', default: '(MYSQL_PASSWORD)', help: 'password put into CHANGE MASTER' },
  { name: 'BACKUP_BIND', default: '0.0.0.0', help: 'address the sidecar serves on' },
  { name: 'BACKUP_PORT', default: '3307', help: 'port the sidecar serves on' },
  { name: 'BACKUP_TOKEN', help: 'shared secret for GET /backup (at least 16 characters)' },
  { name: 'BACKUP_AUTH', default: 'token', help: 'token, or none to serve backups to anyone (warns)' },
  { name: 'BACKUP_IDLE_TIMEOUT', default: '120', help: 'seconds a backup client may read nothing before the backup is ended', only: ['sidecar'] },
  { name: 'XTRABACKUP_BIN', default: '(xtrabackup, else mariadb-backup, on PATH)', help: 'backup tool' },
  { name: 'XBSTREAM_BIN', default: '(xbstream, else mbstream, on PATH)', help: 'stream tool' },
  { name: 'XTRABACKUP_ARGS', help: 'extra arguments for the backup tool, space-separated (e.g. --throttle=20)' },
  { name: 'CLONE_RETRY_DEADLINE', default: '600', help: 'seconds init keeps retrying a refused, busy or broken clone' },
  { name: 'CLONE_RETRY_MAX_DELAY', default: '30', help: 'longest wait in seconds between clone attempts' },
  { name: 'CLONE_SOURCE', default: 'auto', help: 'auto (a caught-up replica of a lower ordinal, else the primary), previous, primary, or a host', only: ['init'] },
  { name: 'CLONE_MAX_LAG', default: '60', help: 'auto: seconds a replica may be behind and still be cloned from', only: ['init'] },
  { name: 'PEER_STATUS_TIMEOUT', default: '3', help: "seconds to wait for a peer agent's /status", only: ['init'] },
  { name: 'PEER_PROBE_COUNT', default: '5', help: 'ordinal 0 with an empty datadir: how many replica ordinals (1..N) to ask whether they hold data', only: ['init'] },
  { name: 'PRIMARY_EMPTY_START', default: 'refuse', help: 'ordinal 0 with an empty datadir while replicas hold data: refuse, allow, or recover (clone from the most advanced replica; GTID only)', only: ['init'] },
  { name: 'READY_MAX_LAG', default: '30', help: 'a replica is ready only while at most this many seconds behind', only: ['sidecar'] },
  { name: 'REPLICATION_MODE', default: 'auto', help: 'auto, gtid or position: how a new replica follows the primary', only: ['init', 'sidecar', 'plan'] },
  { name: 'SERVER_VERSION', help: 'plan without a live server: the version, e.g. 8.4.3 or 10.11.9-MariaDB', only: ['plan'] },
  { name: 'FLAVOR', default: '(from SERVER_VERSION)', help: 'plan without a live server: mysql or mariadb', only: ['plan'] },
  { name: 'GTID_MODE', default: 'ON', help: 'plan without a live MySQL server: its gtid_mode, ON or OFF', only: ['plan'] },
  { name: 'LOG_LEVEL', default: 'info', help: 'pino level: fatal, error, warn, info, debug, trace, silent' },
];

const settingsOf = (command: Command | null) => SETTINGS.filter((s) => !s.only || (command !== null && s.only.includes(command)));

const kebab = (name: string) => name.toLowerCase().replaceAll('_', '-');

const HOST = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const MAX_SERVER_ID = 4294967295;

/** Thrown by loadConfig for `--help`: the CLI prints the text and exits 0. */
export class HelpRequested {
  constructor(readonly text: string) {}
}

export function helpText(command: Command | null): string {
  const lines = [
    command ? `Usage: mysql-agent ${command} [--flag value ...]` : 'Usage: mysql-agent <init|sidecar|plan> [--flag value ...]',
    '',
    command === 'init'
      ? 'Writes server-id.cnf and the role config, then clones an empty replica datadir from the best peer;\nat ordinal 0 with an empty datadir, first checks that no replica holds data (PRIMARY_EMPTY_START).'
      : command === 'sidecar'
        ? 'Configures replication once from the clone, then serves /backup, /healthz, /readyz, /status.'
        : command === 'plan'
          ? 'Prints the statements the sidecar would run for the clone in DATA_DIR, password masked; exit 2 if it cannot be used.'
          : 'init: write config and clone a replica; sidecar: start replication once and serve backups;\nplan: print the statements the sidecar would run.',
    '',
    'Settings: environment variable, or the flag of the same name in kebab-case (the flag wins).',
  ];
  for (const s of settingsOf(command)) {
    const def = s.default === undefined ? '' : ` [default: ${s.default}]`;
    lines.push(`  ${s.name.padEnd(22)} --${kebab(s.name).padEnd(22)} ${s.help}${def}`);
  }
  return lines.join('\n');
}

export interface ConfigSources {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly hostname: string;
  /** Whether an executable exists at a path; injected so tests need not touch PATH. */
  readonly isExecutable?: (path: string) => boolean;
}

function defaultIsExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses argv (`<command> [--flags]`) and the environment into a frozen Config.
 * Throws ConfigError naming the first invalid variable, or HelpRequested.
 */
export function loadConfig(sources: ConfigSources): Config {
  const [command, ...rest] = sources.argv;
  if (command === '--help' || command === '-h' || command === undefined) {
    if (command === undefined) throw new ConfigError('no command given: run `mysql-agent init`, `sidecar` or `plan` (see --help)');
    throw new HelpRequested(helpText(null));
  }
  if (!COMMANDS.includes(command as Command)) {
    throw new ConfigError(`unknown command "${command}": expected init, sidecar or plan`);
  }
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const s of settingsOf(command as Command)) options[kebab(s.name)] = { type: 'string' };
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: [...rest], options, strict: true, allowPositionals: false }).values as typeof flags;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message.split('\n')[0]} (see mysql-agent ${command} --help)`);
  }
  if (flags.help) throw new HelpRequested(helpText(command as Command));
  return buildConfig(command as Command, flags, sources);
}

function buildConfig(command: Command, flags: Record<string, string | boolean | undefined>, sources: ConfigSources): Config {

  const raw = (name: string): string | undefined => {
    const flag = flags[kebab(name)];
    return typeof flag === 'string' ? flag : sources.env[name];
  };
  const str = (name: string, fallback: string): string => {
    const v = raw(name);
    return v === undefined || v === '' ? fallback : v;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const v = raw(name);
    if (v === undefined || v === '') return fallback;
    if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) {
      throw new ConfigError(`${name}="${v}" is invalid: expected a whole number from ${min} to ${max}`);
    }
    return Number(v);
  };
  const host = (name: string, value: string): string => {
    if (!HOST.test(value)) throw new ConfigError(`${name}="${value}" is invalid: expected a host name or IPv4 address`);
    return value;
  };
  const account = (name: string, value: string): string => {
    if (!/^[^\s'"`\\;]{1,80}$/.test(value)) {
      throw new ConfigError(`${name} is invalid: expected 1-80 characters without spaces, quotes, backslashes or semicolons`);
    }
    return value;
  };
  const dir = (name: string, fallback: string): string => {
    const v = str(name, fallback);
    if (!v.startsWith('/')) throw new ConfigError(`${name}="${v}" is invalid: expected an absolute path`);
    return v.replace(/\/+$/, '') || '/';
  };

  const podName = str('POD_NAME', sources.hostname);
  const identity = parsePodName(podName);
  if (!identity) {
    throw new ConfigError(
      `POD_NAME="${podName}" has no ordinal: expected a StatefulSet pod name ending in -N (e.g. mysql-0); set POD_NAME from metadata.name`,
    );
  }
  const { set, ordinal } = identity;

  const offset = int('SERVER_ID_OFFSET', 100, 1, MAX_SERVER_ID);
  if (offset + ordinal > MAX_SERVER_ID) {
    throw new ConfigError(`SERVER_ID_OFFSET=${offset} is too large for ordinal ${ordinal}: server-id must stay at or below ${MAX_SERVER_ID}`);
  }
  const service = str('SERVICE_NAME', 'mysql');
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(service)) {
    throw new ConfigError(`SERVICE_NAME="${service}" is invalid: expected a Kubernetes Service name (lower-case letters, digits, '-')`);
  }
  const template = str('PEER_HOST_TEMPLATE', '{set}-{ordinal}.{service}');
  if (!template.includes('{ordinal}')) {
    throw new ConfigError(`PEER_HOST_TEMPLATE="${template}" is invalid: it must contain {ordinal}`);
  }
  const hostOf = (n: Ordinal) => host('PEER_HOST_TEMPLATE', peerHost(template, set, service, n));
  hostOf(ordinal);
  const primaryHost = host('PRIMARY_HOST', str('PRIMARY_HOST', hostOf(0 as Ordinal)));

  const mysqlUser = account('MYSQL_USER', str('MYSQL_USER', 'root'));
  const mysqlPassword = raw('MYSQL_PASSWORD') ?? '';
  const replicationUser = account('REPLICATION_USER', str('REPLICATION_USER', mysqlUser));
  const replicationPassword = raw('REPLICATION_PASSWORD') ?? mysqlPassword;

  const auth = str('BACKUP_AUTH', 'token');
  if (auth !== 'token' && auth !== 'none') {
    throw new ConfigError(`BACKUP_AUTH="${auth}" is invalid: expected token or none`);
  }
  const tokenRaw = raw('BACKUP_TOKEN');
  let token: string | null = null;
  if (tokenRaw !== undefined && tokenRaw !== '') {
    if (!/^[\x21-\x7e]{16,512}$/.test(tokenRaw)) {
      throw new ConfigError('BACKUP_TOKEN is invalid: expected 16-512 printable characters without spaces (e.g. `openssl rand -hex 32`)');
    }
    token = tokenRaw;
  }
  const primaryEmptyStart = str('PRIMARY_EMPTY_START', 'refuse') as PrimaryEmptyStart;
  if (!PRIMARY_EMPTY_STARTS.includes(primaryEmptyStart)) {
    throw new ConfigError(`PRIMARY_EMPTY_START="${primaryEmptyStart}" is invalid: expected ${PRIMARY_EMPTY_STARTS.join(', ')}`);
  }
  // init clones on a replica, and on ordinal 0 when it may recover from a replica.
  const initClones = command === 'init' && (ordinal !== 0 || primaryEmptyStart === 'recover');
  // The init container needs the token as a client to clone, the sidecar as a server.
  const needsToken = auth === 'token' && (command === 'sidecar' || initClones);
  if (needsToken && token === null) {
    throw new ConfigError(
      'BACKUP_TOKEN is not set: set it to the same secret on every pod (e.g. `openssl rand -hex 32`), or set BACKUP_AUTH=none to run without authentication',
    );
  }

  const isExecutable = sources.isExecutable ?? defaultIsExecutable;
  const pathDirs = (sources.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).filter(Boolean);
  const findTool = (name: string, candidates: string[]): string => {
    const explicit = raw(name);
    if (explicit) {
      const found = explicit.includes('/') ? (isExecutable(explicit) ? explicit : undefined) : lookup([explicit]);
      if (!found) throw new ConfigError(`${name}="${explicit}" is not an executable file: install it or fix ${name}`);
      return found;
    }
    return lookup(candidates) ?? '';
  };
  const lookup = (names: string[]): string | undefined => {
    for (const n of names) for (const d of pathDirs) if (isExecutable(join(d, n))) return join(d, n);
    return undefined;
  };
  const backupTool = findTool('XTRABACKUP_BIN', ['xtrabackup', 'mariadb-backup']);
  const streamTool = findTool('XBSTREAM_BIN', ['xbstream', 'mbstream']);
  const needsTools = command === 'sidecar' || initClones;
  if (needsTools && !backupTool) {
    throw new ConfigError('no backup tool found: install xtrabackup or mariadb-backup on PATH, or set XTRABACKUP_BIN');
  }
  if (needsTools && command === 'init' && !streamTool) {
    throw new ConfigError('no stream tool found: install xbstream or mbstream on PATH, or set XBSTREAM_BIN');
  }
  const extraArgs = str('XTRABACKUP_ARGS', '').split(/\s+/).filter(Boolean);
  for (const a of extraArgs) {
    if (!a.startsWith('--')) throw new ConfigError(`XTRABACKUP_ARGS has "${a}": expected options of the form --name or --name=value`);
  }

  const replicationMode = str('REPLICATION_MODE', 'auto') as RequestedMode;
  if (!REQUESTED_MODES.includes(replicationMode)) {
    throw new ConfigError(`REPLICATION_MODE="${replicationMode}" is invalid: expected ${REQUESTED_MODES.join(', ')}`);
  }
  const offlineServer = command === 'plan' ? describedServer(raw) : null;
  const cloneSource = cloneSourceChoice(str('CLONE_SOURCE', 'auto'), host);

  const logLevel = str('LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL="${logLevel}" is invalid: expected one of ${LOG_LEVELS.join(', ')}`);
  }

  const config: Config = {
    command,
    podName,
    set,
    ordinal,
    role: roleOf(ordinal),
    serverId: serverIdOf(offset, ordinal),
    configMapDir: dir('CONFIG_MAP_DIR', '/mnt/config-map'),
    confDir: dir('CONF_DIR', '/mnt/conf.d'),
    dataDir: dir('DATA_DIR', '/var/lib/mysql'),
    peerHost: hostOf,
    primaryHost,
    mysql: {
      host: host('MYSQL_HOST', str('MYSQL_HOST', '127.0.0.1')),
      port: int('MYSQL_PORT', 3306, 1, 65535),
      user: mysqlUser,
      password: mysqlPassword,
    },
    replication: { user: replicationUser, password: replicationPassword },
    backup: {
      bind: host('BACKUP_BIND', str('BACKUP_BIND', '0.0.0.0')),
      port: int('BACKUP_PORT', 3307, 1, 65535),
      token: auth === 'none' ? null : token,
      idleTimeoutMs: int('BACKUP_IDLE_TIMEOUT', 120, 1, 24 * 3600) * 1000,
    },
    tools: { backup: backupTool, stream: streamTool, extraArgs },
    clone: {
      retryDeadlineMs: int('CLONE_RETRY_DEADLINE', 600, 0, 7 * 24 * 3600) * 1000,
      retryMaxDelayMs: int('CLONE_RETRY_MAX_DELAY', 30, 1, 3600) * 1000,
    },
    cloneSource: { choice: cloneSource, maxLagSeconds: int('CLONE_MAX_LAG', 60, 0, 7 * 24 * 3600) },
    peers: {
      statusTimeoutMs: int('PEER_STATUS_TIMEOUT', 3, 1, 300) * 1000,
      probeCount: int('PEER_PROBE_COUNT', 5, 1, 1000),
    },
    primaryEmptyStart,
    readyMaxLagSeconds: int('READY_MAX_LAG', 30, 0, 7 * 24 * 3600),
    replicationMode,
    offlineServer,
    logLevel,
  };
  return deepFreeze(config);
}

/** CLONE_SOURCE: auto, previous, primary, or the host of an agent to clone from. */
function cloneSourceChoice(value: string, host: (name: string, value: string) => string): CloneSourceChoice {
  if (value === 'auto' || value === 'previous' || value === 'primary') return { kind: value };
  if (!HOST.test(value)) {
    throw new ConfigError(`CLONE_SOURCE="${value}" is invalid: expected auto, previous, primary, or the host name of a peer's agent`);
  }
  return { kind: 'host', host: host('CLONE_SOURCE', value) };
}

/** The server `plan` is asked about with --server-version (and --flavor, --gtid-mode), or null for a live one. */
function describedServer(raw: (name: string) => string | undefined): ServerFacts | null {
  const text = raw('SERVER_VERSION');
  const flavor = raw('FLAVOR');
  const gtid = (raw('GTID_MODE') ?? 'ON').toUpperCase();
  if (text === undefined || text === '') {
    if (flavor) throw new ConfigError('FLAVOR is set without SERVER_VERSION: give --server-version too, or neither to ask the live server');
    return null;
  }
  if (flavor !== undefined && flavor !== 'mysql' && flavor !== 'mariadb') {
    throw new ConfigError(`FLAVOR="${flavor}" is invalid: expected mysql or mariadb`);
  }
  if (gtid !== 'ON' && gtid !== 'OFF') throw new ConfigError(`GTID_MODE="${gtid}" is invalid: expected ON or OFF`);
  let version: ServerVersion;
  try {
    version = parseServerVersion(text, flavor === 'mariadb' ? 'MariaDB' : '');
  } catch {
    throw new ConfigError(`SERVER_VERSION="${text}" is invalid: expected X.Y.Z, e.g. 8.4.3 or 10.11.9-MariaDB`);
  }
  if (flavor === 'mysql') version = { ...version, flavor: 'mysql' };
  return { version, gtidMode: version.flavor === 'mariadb' || gtid === 'ON' };
}

function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) if (v !== null && typeof v === 'object') deepFreeze(v as object);
  return Object.freeze(value);
}
