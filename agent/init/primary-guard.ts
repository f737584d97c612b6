/**
 * Ordinal 0 with an empty datadir: a brand-new cluster, or a primary whose volume was lost.
 * Before the server initialises an empty datadir, init reads the replicas' volume claims from the
 * Kubernetes API (VOLUME_CLAIMS=kubernetes) and asks the agents of ordinals 1..PEER_PROBE_COUNT,
 * and of every ordinal with a claim, whether they hold data. A replica that does not answer is
 * `absent` only when nothing says it exists (no claim; with VOLUME_CLAIMS=none, a name that does
 * not resolve), else `silent`: it may hold data.
 *
 * | evidence                                        | setting | what init does                       |
 * |-------------------------------------------------|---------|--------------------------------------|
 * | no claim, no answer with data (a new cluster)   | any     | starts empty                         |
 * | claims unreadable (VOLUME_CLAIMS=kubernetes)    | refuse, recover | exits 1: without them a full outage looks like a new cluster |
 * | claimed replicas silent, none answered with data | refuse, recover | exits 1 (a full outage): their volumes may hold the data |
 * | replicas hold data                              | refuse  | exits 1 naming them and the ways out |
 * | any of the above                                | allow   | starts empty on purpose (logged as such) |
 * | replicas hold data, GTID, none silent           | recover | clones ordinal 0 from the most advanced replica; the sidecar then makes the new primary's GTID state continue from it (primary-recovery.ts) |
 * | replicas hold data, some silent                 | recover | exits 1 naming the silent ones: one may be ahead |
 * | replicas hold data, position                    | recover | exits 1: a new binlog cannot continue positions, replicas would need re-cloning |
 *
 * With VOLUME_CLAIMS=none a silent replica counts as absent for starting empty (nothing tells it
 * from an address where no pod runs, and the first start of a compose project looks the same),
 * never for recover.
 *
 * `decidePrimaryStart` is the policy (pure, over the answers and the claims); `guardEmptyPrimary`
 * asks, logs, records the decision and runs the clone.
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
import { type PeerReport, probePeers, statusOver } from '../cluster/peer-status.js';
import { agentTransport } from '../core/tls.js';
import type { InitConfig, PrimaryEmptyStart } from './settings.js';
import { type ClaimEvidence, readClaimEvidence } from './volume-claims.js';

/**
 * A replica that did not answer: `absent` when nothing says it exists, else `silent` — it may
 * hold data. With the claims: silent exactly when it has one (a pod not yet created or not yet
 * in DNS has its claim already). Without (none, or unreadable): absent only when its name does
 * not resolve (ENOTFOUND); refused, timed out, an HTTP error or a DNS failure such as EAI_AGAIN
 * says nothing about the pod.
 */
export type Unanswered = 'absent' | 'silent';

export function unansweredAs(report: PeerReport, claims: ClaimEvidence): Unanswered {
  if (claims.source === 'kubernetes') return claims.claims.some((c) => c.ordinal === report.ordinal) ? 'silent' : 'absent';
  return report.code === 'ENOTFOUND' ? 'absent' : 'silent';
}

/** What one replica said, as kept in logs, /status and the records. */
export interface PeerEvidence {
  readonly ordinal: number;
  readonly host: string;
  readonly answered: boolean;
  readonly error?: string;
  readonly counts_as?: Unanswered;
  /** VOLUME_CLAIMS=kubernetes: the replica's claim, or null when it has none. */
  readonly claim?: string | null;
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

export function evidenceOf(reports: readonly PeerReport[], claims: ClaimEvidence): PeerEvidence[] {
  const claimOf = (ordinal: number) =>
    claims.source === 'kubernetes' ? { claim: claims.claims.find((c) => c.ordinal === ordinal)?.name ?? null } : {};
  return reports.map((r) =>
    r.status === null
      ? { ordinal: r.ordinal, host: r.host, answered: false, error: r.error ?? 'no answer', counts_as: unansweredAs(r, claims), ...claimOf(r.ordinal) }
      : {
          ordinal: r.ordinal,
          host: r.host,
          answered: true,
          holds_data: r.status.holdsData,
          gtid_executed: r.status.gtidExecuted,
          uses_gtid: r.status.usesGtid,
          replicating: r.status.replicating,
          ...claimOf(r.ordinal),
        },
  );
}

/** The claims as kept in logs, /status and the records. */
export function claimsEvidence(claims: ClaimEvidence): Record<string, unknown> {
  if (claims.source === 'kubernetes') return { source: 'kubernetes', names: claims.claims.map((c) => c.name) };
  return claims.source === 'unreadable' ? { source: 'unreadable', error: claims.error } : { source: 'none' };
}

const pod = (r: PeerReport) => r.status?.pod ?? `ordinal ${r.ordinal}`;
const named = (rs: readonly PeerReport[]) =>
  rs.map((r) => `${pod(r)} (${r.host}${r.status?.gtidExecuted ? `, GTID ${r.status.gtidExecuted}` : ''})`).join(', ');

/** A replica that did not answer, with its claim when there is one and why it was silent. */
const unheard = (rs: readonly PeerReport[], claims: ClaimEvidence) =>
  rs
    .map((r) => {
      const claim = claims.source === 'kubernetes' ? claims.claims.find((c) => c.ordinal === r.ordinal) : undefined;
      return `ordinal ${r.ordinal} (${r.host}${claim ? `, claim ${claim.name}` : ''}: ${r.error ?? 'no answer'})`;
    })
    .join(', ');

const WAYS_OUT =
  "restore ordinal 0's volume, or promote a replica, or set PRIMARY_EMPTY_START=recover to rebuild ordinal 0 from the most advanced replica (GTID replication only), or PRIMARY_EMPTY_START=allow to start empty on purpose";

/** After a full outage with OrderedReady, no replica pod exists until ordinal 0 is ready. */
const OUTAGE_WAYS_OUT =
  "restore ordinal 0's volume; or start the replicas so that ordinal 0 can be rebuilt from them (after a full outage the StatefulSet creates none before ordinal 0 is ready: see manifests/README.md, \"Ordinal 0 lost its volume\"); or delete the claims whose data is not needed; or set PRIMARY_EMPTY_START=allow to start empty on purpose";

/**
 * The decision for ordinal 0 with an empty datadir, from the replicas' answers and what is known
 * of their volumes. `mode` is REPLICATION_MODE: `position` rules recovery out even where the
 * replicas could do GTIDs.
 */
export function decidePrimaryStart(setting: PrimaryEmptyStart, mode: RequestedMode, reports: readonly PeerReport[], claims: ClaimEvidence): PrimaryStartDecision {
  const answered = reports.filter((r) => r.status !== null);
  const holders = answered.filter((r) => r.status!.holdsData).sort((a, b) => a.ordinal - b.ordinal);
  const silent = reports.filter((r) => r.status === null && unansweredAs(r, claims) === 'silent').sort((a, b) => a.ordinal - b.ordinal);
  // Without claims a silent replica cannot be told from an address where no pod runs: it stops
  // only recovery. A claim is proof of a volume, and so is reason enough not to start empty.
  const claimedSilent = claims.source === 'kubernetes' ? silent : [];
  // A replica whose agent answered but could not be trusted (TLS) runs, claims or not: it may hold data.
  const untrusted = reports.filter((r) => r.status === null && r.tlsFailure !== undefined && !claimedSilent.includes(r));
  const concerns = [
    ...(holders.length > 0 ? [`replicas hold data: ${named(holders)}`] : []),
    ...(untrusted.length > 0 ? [`replicas answered over TLS but could not be trusted: ${untrusted.map((r) => `${pod(r)} at ${r.host} (${r.tlsFailure})`).join(', ')}`] : []),
    ...(claimedSilent.length > 0 ? [`replicas with a volume claim did not answer: ${unheard(claimedSilent, claims)}`] : []),
    ...(claims.source === 'unreadable' ? [`the replicas' volume claims cannot be read from the Kubernetes API (${claims.error})`] : []),
  ];
  if (concerns.length === 0) {
    const uncounted = silent.length > 0 ? `; ${unheard(silent, claims)} did not answer and count as absent (VOLUME_CLAIMS=none)` : '';
    if (answered.length === 0) {
      const why = claims.source === 'kubernetes' ? 'no replica has a volume claim or answered' : 'no replica agent answered';
      return { action: 'start-empty', decision: 'new-cluster', reason: `${why}${uncounted}: a new cluster, starting empty` };
    }
    return { action: 'start-empty', decision: 'no-data', reason: `replicas answered (${answered.map(pod).join(', ')}) but none holds data${uncounted}: starting empty` };
  }
  const lost = `ordinal 0 has an empty datadir but ${concerns.join('; ')}`;
  if (setting === 'allow') {
    return {
      action: 'start-empty',
      decision: 'allowed',
      reason: `${lost}; PRIMARY_EMPTY_START=allow: starting an empty primary on purpose (the replicas will stop with replication errors and need re-cloning)`,
    };
  }
  if (claims.source === 'unreadable') {
    return {
      action: 'refuse',
      reason: `${lost}: without them a full outage looks like a new cluster, so no decision is made (the restart asks again); let the pod's service account get and list persistentvolumeclaims (manifests/base/rbac.yaml), or outside Kubernetes set VOLUME_CLAIMS=none`,
    };
  }
  if (holders.length === 0) {
    return { action: 'refuse', reason: `${lost}: their volumes may hold the cluster's data; refusing to start an empty primary over them (the restart asks again): ${OUTAGE_WAYS_OUT}` };
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
  // One that did not answer may be the most advanced: rebuilt from another, ordinal 0 would
  // reuse GTIDs it already has, and on reconnecting it would silently skip those transactions.
  if (silent.length > 0) {
    const unnamed = claims.source === 'kubernetes' ? '' : `; replicas did not answer: ${unheard(silent, claims)}`;
    return {
      action: 'refuse',
      reason: `${lost}${unnamed}; PRIMARY_EMPTY_START=recover needs an answer from every replica that may hold data: one that did not may be ahead of those that did; refusing until they answer (the restart asks again)`,
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

/** Seconds the Kubernetes API may take to list the claims; a failure refuses and the restart asks again. */
const API_TIMEOUT_MS = 10_000;

async function readClaims(config: InitConfig): Promise<ClaimEvidence> {
  const claims = config.volumeClaims;
  if (claims === null || claims.kind === 'none') return { source: 'none' };
  return readClaimEvidence(claims.api, claims.template, config.set, API_TIMEOUT_MS);
}

/** The ordinals ordinal 0 asks: 1..PEER_PROBE_COUNT and every ordinal with a claim. */
export function ordinalsToAsk(probeCount: number, claims: ClaimEvidence): number[] {
  const claimed = claims.source === 'kubernetes' ? claims.claims.map((c) => c.ordinal) : [];
  return [...new Set([...Array.from({ length: probeCount }, (_, i) => i + 1), ...claimed])].sort((a, b) => a - b);
}

/** The claims first (they say whom to ask), then every replica at once. */
async function askReplicas(config: InitConfig): Promise<{ reports: PeerReport[]; claims: ClaimEvidence }> {
  const claims = await readClaims(config);
  const peers = ordinalsToAsk(config.peers.probeCount, claims).map((ordinal) => ({ ordinal, host: hostOf(config.peerHosts, ordinal) }));
  return { reports: await probePeers(peers, config.backup.port, config.peers.statusTimeoutMs, statusOver(agentTransport(config.tls))), claims };
}

/**
 * Runs the guard: asks the replicas, logs the decision with its evidence, records it in
 * CONF_DIR, then returns (start empty), throws (refuse), or clones from the most advanced replica
 * through `clone` and leaves the recovery record in the clone for the sidecar.
 */
export async function guardEmptyPrimary(
  config: InitConfig,
  log: Logger,
  clone: (plan: ClonePlan) => Promise<void>,
  /** RESTORE_FROM: used where the rule would start a new cluster (no replica holds data). */
  restore?: () => Promise<void>,
): Promise<void> {
  const { reports, claims } = await askReplicas(config);
  const decision = decidePrimaryStart(config.primaryEmptyStart, config.replicationMode, reports, claims);
  const evidence = evidenceOf(reports, claims);
  const record = {
    decision: decision.action === 'start-empty' ? decision.decision : decision.action,
    reason: decision.reason,
    setting: config.primaryEmptyStart,
    claims: claimsEvidence(claims),
    evidence,
    at: new Date().toISOString(),
  };
  const level = decision.action === 'start-empty' && decision.decision !== 'allowed' ? 'info' : decision.action === 'refuse' ? 'error' : 'warn';
  log[level]({ phase: 'primary-start', decision: record.decision, setting: config.primaryEmptyStart, claims: record.claims, evidence }, decision.reason);
  if (decision.action === 'refuse') throw new DataDirError(decision.reason);
  await writeRecord(config.confDir, PRIMARY_START_RECORD, record);
  if (decision.action === 'start-empty') {
    if (restore && decision.decision !== 'allowed') return restore();
    if (restore) log.warn({ phase: 'primary-start' }, 'RESTORE_FROM is not applied: replicas hold data (PRIMARY_EMPTY_START=allow starts empty)');
    return;
  }

  let target = decision;
  let first = true;
  await clone({
    choice: 'recover',
    // Each later round asks again: a replica may have gone away, or moved on.
    rank: async (): Promise<SourceRanking> => {
      if (!first) {
        const asked = await askReplicas(config);
        const again = decidePrimaryStart(config.primaryEmptyStart, config.replicationMode, asked.reports, asked.claims);
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
