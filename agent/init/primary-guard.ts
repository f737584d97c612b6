/**
 * Ordinal 0 with an empty datadir: a brand-new cluster, or a primary whose volume was lost.
 * Before the server initialises an empty datadir, init asks the agents of ordinals
 * 1..PEER_PROBE_COUNT whether they hold data. If none answers, the cluster is new: start empty.
 * If replicas hold data, PRIMARY_EMPTY_START decides:
 *
 * | setting | replicas replicate by | what init does                                            |
 * |---------|-----------------------|-----------------------------------------------------------|
 * | refuse  | any                   | exits 1 naming the replicas and the ways out               |
 * | allow   | any                   | starts empty on purpose (logged as such)                   |
 * | recover | GTID                  | clones ordinal 0 from the most advanced replica; the sidecar then makes the new primary's GTID state continue from it (primary-recovery.ts) |
 * | recover | position              | exits 1: a new binlog cannot continue positions, replicas would need re-cloning |
 *
 * `decidePrimaryStart` is the policy (pure, over the replicas' answers); `guardEmptyPrimary` asks,
 * logs, records the decision and runs the clone.
 */
import { CloneError, DataDirError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { PRIMARY_START_RECORD, RECOVERY_RECORD, writeRecord } from '../core/records.js';
import { hostOf } from '../core/topology.js';
import { readCloneCoordinates } from '../mysql/clone-info.js';
import { compareGtid, isGtidState, mostAdvanced } from '../mysql/gtid.js';
import type { RequestedMode } from '../mysql/replication-sql.js';
import type { ClonePlan } from './clone.js';
import type { Candidate, SourceRanking } from './clone-source.js';
import { type PeerReport, probePeers } from '../cluster/peer-status.js';
import type { InitConfig, PrimaryEmptyStart } from './settings.js';

/** What one replica said, as kept in logs, /status and the records. */
export interface PeerEvidence {
  readonly ordinal: number;
  readonly host: string;
  readonly answered: boolean;
  readonly error?: string;
  readonly holds_data?: boolean;
  readonly gtid_executed?: string | null;
  readonly uses_gtid?: boolean | null;
  readonly replicating?: boolean;
}

export type PrimaryStartDecision =
  | { readonly action: 'start-empty'; readonly decision: 'new-cluster' | 'no-data' | 'allowed'; readonly reason: string }
  | { readonly action: 'refuse'; readonly reason: string }
  | {
      readonly action: 'recover';
      readonly reason: string;
      /** The most advanced replicas (all at the same GTID state), closest ordinal first. */
      readonly sources: readonly Candidate[];
      readonly gtid: string;
      /** Replicas behind the recovery point: they cannot resume from the new primary and need a re-clone. */
      readonly behind: readonly { readonly ordinal: number; readonly host: string; readonly gtid: string }[];
    };

export function evidenceOf(reports: readonly PeerReport[]): PeerEvidence[] {
  return reports.map((r) =>
    r.status === null
      ? { ordinal: r.ordinal, host: r.host, answered: false, error: r.error ?? 'no answer' }
      : {
          ordinal: r.ordinal,
          host: r.host,
          answered: true,
          holds_data: r.status.holdsData,
          gtid_executed: r.status.gtidExecuted,
          uses_gtid: r.status.usesGtid,
          replicating: r.status.replicating,
        },
  );
}

const pod = (r: PeerReport) => r.status?.pod ?? `ordinal ${r.ordinal}`;
const named = (rs: readonly PeerReport[]) =>
  rs.map((r) => `${pod(r)} (${r.host}${r.status?.gtidExecuted ? `, GTID ${r.status.gtidExecuted}` : ''})`).join(', ');

const WAYS_OUT =
  "restore ordinal 0's volume, or promote a replica, or set PRIMARY_EMPTY_START=recover to rebuild ordinal 0 from the most advanced replica (GTID replication only), or PRIMARY_EMPTY_START=allow to start empty on purpose";

/**
 * The decision for ordinal 0 with an empty datadir, from the replicas' answers.
 * `mode` is REPLICATION_MODE: `position` rules recovery out even where the replicas could do GTIDs.
 */
export function decidePrimaryStart(setting: PrimaryEmptyStart, mode: RequestedMode, reports: readonly PeerReport[]): PrimaryStartDecision {
  const answered = reports.filter((r) => r.status !== null);
  const holders = answered.filter((r) => r.status!.holdsData).sort((a, b) => a.ordinal - b.ordinal);
  if (answered.length === 0) {
    return { action: 'start-empty', decision: 'new-cluster', reason: 'no replica agent answered: a new cluster, starting empty' };
  }
  if (holders.length === 0) {
    return { action: 'start-empty', decision: 'no-data', reason: `replicas answered (${answered.map(pod).join(', ')}) but none holds data: starting empty` };
  }
  const lost = `ordinal 0 has an empty datadir but replicas hold data: ${named(holders)}`;
  if (setting === 'allow') {
    return {
      action: 'start-empty',
      decision: 'allowed',
      reason: `${lost}; PRIMARY_EMPTY_START=allow: starting an empty primary on purpose (the replicas will stop with replication errors and need re-cloning)`,
    };
  }
  if (setting === 'refuse') {
    return { action: 'refuse', reason: `${lost}; refusing to start an empty primary over them: ${WAYS_OUT}` };
  }
  // recover
  const positional = holders.filter((r) => r.status!.usesGtid === false);
  if (mode === 'position' || positional.length > 0) {
    const why = mode === 'position' ? 'REPLICATION_MODE=position' : `${positional.map(pod).join(', ')} replicate(s) by binlog position`;
    return {
      action: 'refuse',
      reason: `${lost}; PRIMARY_EMPTY_START=recover needs GTID replication but ${why}: a rebuilt primary starts a new binary log, so no replica can continue from its old position and every replica would need a re-clone. Restore ordinal 0's volume or promote a replica; or set PRIMARY_EMPTY_START=allow and re-clone the replicas (empty their volumes)`,
    };
  }
  const unknown = holders.filter((r) => r.status!.gtidExecuted === null || !isGtidState(r.status!.gtidExecuted));
  if (unknown.length > 0) {
    return { action: 'refuse', reason: `${lost}; cannot recover: ${unknown.map(pod).join(', ')} did not report a GTID state (server down?). ${WAYS_OUT}` };
  }
  const ranked = mostAdvanced(holders, (r) => r.status!.gtidExecuted!);
  if (ranked === null) {
    return { action: 'refuse', reason: `${lost}; cannot recover: their GTID states diverged, none has executed everything the others have. ${WAYS_OUT}` };
  }
  const gtid = ranked.best[0]!.status!.gtidExecuted!;
  const sources = [...ranked.best]
    .sort((a, b) => a.ordinal - b.ordinal)
    .map((r) => ({ ordinal: r.ordinal, host: r.host, why: `most advanced replica (GTID ${gtid})` }));
  const behind = ranked.behind.map((r) => ({ ordinal: r.ordinal, host: r.host, gtid: r.status!.gtidExecuted! }));
  return {
    action: 'recover',
    reason: `${lost}; PRIMARY_EMPTY_START=recover: rebuilding ordinal 0 from ${sources.map((s) => `ordinal ${s.ordinal}`).join(' or ')} at GTID ${gtid}${
      behind.length > 0 ? `; behind it and needing a re-clone afterwards: ${behind.map((b) => `ordinal ${b.ordinal} (${b.gtid})`).join(', ')}` : ''
    }`,
    sources,
    gtid,
    behind,
  };
}

/** Replicas ordinal 0 asks: 1..PEER_PROBE_COUNT. */
function replicaPeers(config: InitConfig): { ordinal: number; host: string }[] {
  return Array.from({ length: config.peers.probeCount }, (_, i) => ({ ordinal: i + 1, host: hostOf(config.peerHosts, i + 1) }));
}

async function askReplicas(config: InitConfig): Promise<PeerReport[]> {
  return probePeers(replicaPeers(config), config.backup.port, config.peers.statusTimeoutMs);
}

/**
 * Runs the guard: asks the replicas, logs the decision with its evidence, records it in
 * CONF_DIR, then returns (start empty), throws (refuse), or clones from the most advanced replica
 * through `clone` and leaves the recovery record in the clone for the sidecar.
 */
export async function guardEmptyPrimary(config: InitConfig, log: Logger, clone: (plan: ClonePlan) => Promise<void>): Promise<void> {
  const reports = await askReplicas(config);
  const decision = decidePrimaryStart(config.primaryEmptyStart, config.replicationMode, reports);
  const evidence = evidenceOf(reports);
  const record = { decision: decision.action === 'start-empty' ? decision.decision : decision.action, reason: decision.reason, setting: config.primaryEmptyStart, evidence, at: new Date().toISOString() };
  const level = decision.action === 'start-empty' && decision.decision !== 'allowed' ? 'info' : decision.action === 'refuse' ? 'error' : 'warn';
  log[level]({ phase: 'primary-start', decision: record.decision, setting: config.primaryEmptyStart, evidence }, decision.reason);
  if (decision.action === 'refuse') throw new DataDirError(decision.reason);
  await writeRecord(config.confDir, PRIMARY_START_RECORD, record);
  if (decision.action === 'start-empty') return;

  let target = decision;
  let first = true;
  await clone({
    choice: 'recover',
    // Each later round asks again: a replica may have gone away, or moved on.
    rank: async (): Promise<SourceRanking> => {
      if (!first) {
        const again = decidePrimaryStart(config.primaryEmptyStart, config.replicationMode, await askReplicas(config));
        if (again.action !== 'recover') throw new CloneError(again.reason, false);
        target = again;
      }
      first = false;
      return { candidates: target.sources, skipped: target.behind.map((b) => ({ ...b, reason: `behind the most advanced replica (GTID ${b.gtid})` })) };
    },
    beforeMove: async (dir, source) => {
      // The clone's own coordinates are the exact state it holds; /status was read moments before.
      const coordinates = (await readCloneCoordinates(dir))?.coordinates ?? null;
      const gtid = coordinates?.from === 'slave_info' ? coordinates.gtid : null;
      if (gtid === null) {
        throw new CloneError(`the clone from ${source.host} carries no GTID position in its slave_info: cannot continue the GTID state`, false);
      }
      const order = compareGtid(gtid, target.gtid);
      if (order === 'behind' || order === 'diverged') {
        throw new CloneError(`the clone from ${source.host} is at GTID ${gtid}, behind ${target.gtid} that its /status reported: not using it`, false);
      }
      log.warn({ phase: 'primary-start', peer: source.host, gtid }, `recovered primary will continue from GTID ${gtid}`);
      await writeRecord(dir, RECOVERY_RECORD, { ...record, source: { host: source.host, ordinal: source.ordinal }, gtid, behind: target.behind, continuity: null });
    },
  });
}
