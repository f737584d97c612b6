/**
 * The settings every command shares: who this pod is (its name, hence ordinal and role), where
 * its volumes are, how its peers are named, and how it logs. Declared once; each command's
 * table lists the ones it reads.
 */
import { ConfigError } from './errors.js';
import { type Setting, type SettingsReader, checkHost, directory, oneOf, text, wholeNumber } from './settings.js';
import { type Ordinal, type PeerHosts, type Role, hostOf, parsePodName, roleOf, serverIdOf } from './topology.js';

const MAX_SERVER_ID = 4294967295;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const POD_NAME: Setting<string | null> = {
  name: 'POD_NAME',
  help: 'pod name; the ordinal is its trailing -N',
  shown: '(the hostname)',
  fallback: null,
  parse: (t) => t,
};
export const SERVER_ID_OFFSET = wholeNumber('SERVER_ID_OFFSET', 'server-id = offset + ordinal', 100, 1, MAX_SERVER_ID);
export const CONF_DIR = directory('CONF_DIR', "where server-id.cnf and the role's file are written", '/mnt/conf.d');
export const DATA_DIR = directory('DATA_DIR', 'the datadir', '/var/lib/mysql');
export const SERVICE_NAME: Setting<string> = {
  ...text('SERVICE_NAME', 'the headless Service', 'mysql'),
  parse: (t) => {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(t)) {
      throw new ConfigError(`SERVICE_NAME="${t}" is invalid: expected a Kubernetes Service name (lower-case letters, digits, '-')`);
    }
    return t;
  },
};
export const PEER_HOST_TEMPLATE: Setting<string> = {
  ...text('PEER_HOST_TEMPLATE', 'host of ordinal N', '{set}-{ordinal}.{service}'),
  parse: (t) => {
    if (!t.includes('{ordinal}')) throw new ConfigError(`PEER_HOST_TEMPLATE="${t}" is invalid: it must contain {ordinal}`);
    return t;
  },
};
export const LOG_LEVEL = oneOf('LOG_LEVEL', 'pino level: fatal, error, warn, info, debug, trace, silent', LOG_LEVELS, 'info');

export interface PodConfig {
  readonly podName: string;
  readonly set: string;
  readonly ordinal: Ordinal;
  readonly role: Role;
  readonly logLevel: string;
}

/** POD_NAME (else the hostname) and LOG_LEVEL. */
export function readPod(read: SettingsReader, hostname: string): PodConfig {
  const podName = read.get(POD_NAME) ?? hostname;
  const identity = parsePodName(podName);
  if (!identity) {
    read.problem(`POD_NAME="${podName}" has no ordinal: expected a StatefulSet pod name ending in -N (e.g. mysql-0); set POD_NAME from metadata.name`);
  }
  // Without an ordinal the rest is still checked, as if for ordinal 0.
  const { set, ordinal } = identity ?? { set: 'mysql', ordinal: 0 as Ordinal };
  return { podName, set, ordinal, role: roleOf(ordinal), logLevel: read.get(LOG_LEVEL) };
}

/** server-id from SERVER_ID_OFFSET and the ordinal, kept within the server's 32 bits. */
export function readServerId(read: SettingsReader, ordinal: Ordinal): number {
  const offset = read.get(SERVER_ID_OFFSET);
  if (offset + ordinal > MAX_SERVER_ID) {
    read.problem(`SERVER_ID_OFFSET=${offset} is too large for ordinal ${ordinal}: server-id must stay at or below ${MAX_SERVER_ID}`);
  }
  return serverIdOf(offset, ordinal);
}

/** SERVICE_NAME and PEER_HOST_TEMPLATE, checked to give a valid host for this pod and ordinal 0. */
export function readPeerHosts(read: SettingsReader, pod: PodConfig): PeerHosts {
  const hosts: PeerHosts = { template: read.get(PEER_HOST_TEMPLATE), set: pod.set, service: read.get(SERVICE_NAME) };
  for (const n of new Set([pod.ordinal, 0])) if (!checkPeerHost(read, hosts, n)) break;
  return hosts;
}

/** Whether PEER_HOST_TEMPLATE makes a valid host for ordinal `n`; when not, a problem says why. */
export function checkPeerHost(read: SettingsReader, hosts: PeerHosts, n: number): boolean {
  try {
    checkHost('PEER_HOST_TEMPLATE', hostOf(hosts, n));
    return true;
  } catch (err) {
    read.problem((err as Error).message);
    return false;
  }
}
