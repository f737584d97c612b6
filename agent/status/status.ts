/**
 * `mysql-agent status`: asks ordinals 0..POD_COUNT-1 at once (each within PEER_STATUS_TIMEOUT),
 * then the ordinals after them one by one while they answer (a StatefulSet scaled beyond
 * POD_COUNT still shows whole), and prints the rows; with --watch, again every WATCH_INTERVAL
 * until stopped. Returns the exit status of the last refresh.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { type PeerReport, type fetchStatus, probePeers, statusOver } from '../cluster/peer-status.js';
import { agentTransport } from '../core/tls.js';
import { hostOf } from '../core/topology.js';
import { renderJson, renderTable } from './render.js';
import { buildStatus, exitCodeOf } from './rows.js';
import type { StatusConfig } from './settings.js';

/** Beyond POD_COUNT, ordinals are asked one at a time up to this one. */
const MAX_ORDINAL = 1000;
/** Home and clear the screen: the next frame replaces the last. */
const CLEAR = '\x1b[H\x1b[2J';

export interface Terminal {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export async function gather(config: StatusConfig, fetch: typeof fetchStatus = statusOver(agentTransport(config.tls))): Promise<PeerReport[]> {
  const peer = (ordinal: number) => ({ ordinal, host: hostOf(config.peerHosts, ordinal) });
  const ask = (peers: ReturnType<typeof peer>[]) => probePeers(peers, config.port, config.timeoutMs, fetch);
  const reports = await ask(Array.from({ length: config.podCount }, (_, n) => peer(n)));
  for (let n = config.podCount; n <= MAX_ORDINAL; n++) {
    const [next] = await ask([peer(n)]);
    if (next!.status === null) break;
    reports.push(next!);
  }
  return reports;
}

export async function runStatus(
  config: StatusConfig,
  out: Terminal,
  signal: AbortSignal,
  env: { readonly now?: () => Date; readonly fetch?: typeof fetchStatus } = {},
): Promise<0 | 1> {
  const now = env.now ?? (() => new Date());
  const { json, watch, intervalMs, noColor } = config.output;
  const inPlace = watch && !json && out.isTTY === true;
  for (;;) {
    const status = buildStatus(await gather(config, env.fetch), config.peerHosts.set, now());
    const code = exitCodeOf(status);
    if (signal.aborted) return code;
    if (json) {
      out.write(renderJson(status, watch));
    } else {
      const header = watch ? `every ${intervalMs / 1000} s, ${status.asked_at} (Ctrl-C to stop)\n\n` : '';
      const table = renderTable(status, { colour: out.isTTY === true && !noColor, now: now() });
      out.write(inPlace ? `${CLEAR}${header}${table}` : `${header}${table}${watch ? '\n' : ''}`);
    }
    if (!watch) return code;
    await delay(intervalMs, undefined, { signal }).catch(() => {});
    if (signal.aborted) return code;
  }
}
