/** `mysql-agent plan`: the settings it reads and the frozen config they make. */
import { ConfigError } from '../core/errors.js';
import { DATA_DIR, LOG_LEVEL, PEER_HOST_TEMPLATE, POD_NAME, type PodConfig, SERVICE_NAME, readPeerHosts, readPod } from '../core/pod-settings.js';
import { type CommandSpec, type Setting, type SettingsReader, text } from '../core/settings.js';
import { TLS_DIR } from '../core/tls.js';
import type { RequestedMode, ServerFacts } from './replication-sql.js';
import { type ServerVersion, parseServerVersion } from './server-version.js';
import { REPLICATION_MODE, SERVER_ACCESS, type ServerAccess, readServerAccess } from './settings.js';

export interface PlanConfig extends PodConfig, ServerAccess {
  readonly command: 'plan';
  readonly dataDir: string;
  readonly replicationMode: RequestedMode;
  /** A server described on the command line instead of a live one. */
  readonly offlineServer: ServerFacts | null;
}

export const SERVER_VERSION = text('SERVER_VERSION', 'plan without a live server: the version, e.g. 8.4.3 or 10.11.9-MariaDB', '');
export const FLAVOR = text('FLAVOR', 'plan without a live server: mysql or mariadb', '', '(from SERVER_VERSION)');
/** true: ON. */
export const GTID_MODE: Setting<boolean> = {
  name: 'GTID_MODE',
  help: 'plan without a live MySQL server: its gtid_mode, ON or OFF',
  shown: 'ON',
  fallback: true,
  parse: (t) => {
    const mode = t.toUpperCase();
    if (mode !== 'ON' && mode !== 'OFF') throw new ConfigError(`GTID_MODE="${mode}" is invalid: expected ON or OFF`);
    return mode === 'ON';
  },
};

/** The server described by --server-version (and --flavor, --gtid-mode), or null for the live one. */
function describedServer(read: SettingsReader): ServerFacts | null {
  const text = read.get(SERVER_VERSION);
  const flavor = read.get(FLAVOR);
  const gtidOn = read.get(GTID_MODE);
  if (text === '') {
    if (flavor) read.problem('FLAVOR is set without SERVER_VERSION: give --server-version too, or neither to ask the live server');
    return null;
  }
  if (flavor !== '' && flavor !== 'mysql' && flavor !== 'mariadb') {
    read.problem(`FLAVOR="${flavor}" is invalid: expected mysql or mariadb`);
    return null;
  }
  let version: ServerVersion;
  try {
    version = parseServerVersion(text, flavor === 'mariadb' ? 'MariaDB' : '');
  } catch {
    read.problem(`SERVER_VERSION="${text}" is invalid: expected X.Y.Z, e.g. 8.4.3 or 10.11.9-MariaDB`);
    return null;
  }
  if (flavor === 'mysql') version = { ...version, flavor: 'mysql' };
  return { version, gtidMode: version.flavor === 'mariadb' || gtidOn };
}

export const planCommand: CommandSpec<PlanConfig> = {
  name: 'plan',
  summary: 'Prints the statements the sidecar would run for the clone in DATA_DIR, password masked; exit 2 if it cannot be used.',
  settings: [POD_NAME, DATA_DIR, SERVICE_NAME, PEER_HOST_TEMPLATE, ...SERVER_ACCESS, REPLICATION_MODE, TLS_DIR, SERVER_VERSION, FLAVOR, GTID_MODE, LOG_LEVEL],
  build: (read, sources) => {
    const pod = readPod(read, sources.hostname);
    // plan may run anywhere (a laptop, CI): TLS_DIR only names the CA file the server reads; its files are not checked here.
    const tlsDir = read.get(TLS_DIR);
    return {
      command: 'plan',
      ...pod,
      dataDir: read.get(DATA_DIR),
      ...readServerAccess(read, readPeerHosts(read, pod), tlsDir === null ? null : { dir: tlsDir }),
      replicationMode: read.get(REPLICATION_MODE),
      offlineServer: describedServer(read),
    };
  },
};
