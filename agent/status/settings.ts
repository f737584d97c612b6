/** `mysql-agent status`: the settings it reads and the frozen config they make. */
import { PEER_STATUS_TIMEOUT } from '../cluster/settings.js';
import { LOG_LEVEL, PEER_HOST_TEMPLATE, POD_NAME, SERVICE_NAME, checkPeerHost } from '../core/pod-settings.js';
import { type CommandSpec, type Setting, switchFlag, wholeNumber } from '../core/settings.js';
import { type PeerHosts, type Role, parsePodName, roleOf } from '../core/topology.js';
import { TLS_DIR, type TlsDir, readTlsDir } from '../core/tls.js';
import { BACKUP_PORT } from '../stream/settings.js';

export interface StatusConfig {
  readonly command: 'status';
  /** Who runs it (POD_NAME, else the hostname): inside a pod a pod name, on a laptop anything. */
  readonly podName: string;
  readonly ordinal: number | null;
  readonly role: Role | null;
  readonly logLevel: string;
  readonly peerHosts: PeerHosts;
  /** The agents' port. */
  readonly port: number;
  /** The agents serve HTTPS: verified against its ca.crt (a certificate of one's own is not needed); null: plain HTTP. */
  readonly tls: TlsDir | null;
  readonly timeoutMs: number;
  /** Ordinals 0..podCount-1 are always rows; later ones while they answer. */
  readonly podCount: number;
  readonly output: { readonly json: boolean; readonly watch: boolean; readonly intervalMs: number; readonly noColor: boolean };
}

export const POD_COUNT = wholeNumber(
  'POD_COUNT',
  "status: the StatefulSet's size (spec.replicas); ordinals 0..N-1 are always shown, later ones while they answer",
  3,
  1,
  1000,
);
export const WATCH_INTERVAL = wholeNumber('WATCH_INTERVAL', 'status --watch: seconds between refreshes', 2, 1, 3600, 1000);
export const JSON_OUTPUT = switchFlag('JSON', 'status: print JSON instead of the table (with --watch, one document per line)');
export const WATCH = switchFlag('WATCH', 'status: refresh in place every WATCH_INTERVAL until Ctrl-C');
/** https://no-color.org: any non-empty value turns colour off; the flag does too. */
export const NO_COLOR: Setting<boolean> = { name: 'NO_COLOR', help: 'status: no colour, even on a terminal', fallback: false, parse: () => true, isSwitch: true };
/** A person reads status on a terminal: only warnings and errors go to stderr as log lines. */
const STATUS_LOG_LEVEL: Setting<string> = { ...LOG_LEVEL, fallback: 'warn', shown: 'warn' };

export const statusCommand: CommandSpec<StatusConfig> = {
  name: 'status',
  summary:
    "Asks every pod's agent for /status, all at once, and prints one row per pod; exit 0 when all are healthy, 1 when one is not.\nRun it in a pod (kubectl exec mysql-0 -c sidecar -- mysql-agent status) or on a laptop with PEER_HOST_TEMPLATE pointed at port-forwards.",
  settings: [POD_NAME, SERVICE_NAME, PEER_HOST_TEMPLATE, BACKUP_PORT, TLS_DIR, PEER_STATUS_TIMEOUT, POD_COUNT, JSON_OUTPUT, WATCH, WATCH_INTERVAL, NO_COLOR, STATUS_LOG_LEVEL],
  build: (read, sources) => {
    const podName = read.get(POD_NAME) ?? sources.hostname;
    const identity = parsePodName(podName);
    const template = read.get(PEER_HOST_TEMPLATE);
    const peerHosts: PeerHosts = { template, set: identity?.set ?? '', service: read.get(SERVICE_NAME) };
    if (template.includes('{set}') && identity === null) {
      read.problem(
        `PEER_HOST_TEMPLATE="${template}" needs the StatefulSet's name, but POD_NAME="${podName}" has no ordinal: set POD_NAME (e.g. mysql-0), or a template without {set} (e.g. 127.0.0.1{ordinal} for port-forwards)`,
      );
    } else {
      checkPeerHost(read, peerHosts, 0);
    }
    return {
      command: 'status',
      podName,
      ordinal: identity?.ordinal ?? null,
      role: identity ? roleOf(identity.ordinal) : null,
      logLevel: read.get(STATUS_LOG_LEVEL),
      peerHosts,
      port: read.get(BACKUP_PORT),
      tls: readTlsDir(read, ['ca']),
      timeoutMs: read.get(PEER_STATUS_TIMEOUT),
      podCount: read.get(POD_COUNT),
      output: { json: read.get(JSON_OUTPUT), watch: read.get(WATCH), intervalMs: read.get(WATCH_INTERVAL), noColor: read.get(NO_COLOR) },
    };
  },
};
