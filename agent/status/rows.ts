/**
 * agent/status/ is `mysql-agent status`: the cluster at a glance, from every pod's /status.
 *
 * From the answers to rows: one per pod, with what is wrong with it, and the replicas' distance
 * to the primary in transactions where their GTID states allow it. Pure: the answers come in,
 * the rows go out; asking and printing are elsewhere. The rows are also the `--json` output, so
 * their fields are snake_case like /status.
 */
import type { PeerReport } from '../cluster/peer-status.js';
import { type Ordinal, type Role, parsePodName, roleOf } from '../core/topology.js';
import { compareGtid, gtidDistance, isGtidState } from '../mysql/gtid.js';

/** How far a replica's executed GTID state is behind the primary's. */
export interface BehindPrimary {
  /** Transactions the replica has not executed yet; null when they cannot be counted. */
  readonly transactions: number | null;
  /** Why not, when they cannot be counted. */
  readonly reason: string | null;
}

export interface PodRow {
  readonly ordinal: number;
  readonly pod: string;
  /** Where it was asked. */
  readonly host: string;
  readonly answered: boolean;
  /** Why there is no answer. */
  readonly error: string | null;
  readonly role: Role | null;
  readonly ready: boolean | null;
  readonly not_ready_reason: string | null;
  readonly server_version: string | null;
  readonly source_host: string | null;
  readonly io_running: string | null;
  readonly sql_running: string | null;
  readonly seconds_behind: number | null;
  readonly gtid_executed: string | null;
  /** Replicas only (null on the primary and on pods that did not answer). */
  readonly behind_primary: BehindPrimary | null;
  /** The backup being served (`finished_at` null), else the last one finished. */
  readonly backup: {
    readonly started_at: string | null;
    readonly finished_at: string | null;
    readonly bytes: number | null;
    readonly failure: string | null;
  } | null;
  readonly clone: {
    readonly source_host: string | null;
    readonly source_ordinal: number | null;
    readonly choice: string | null;
    readonly finished_at: string | null;
    readonly bytes: number | null;
  } | null;
  readonly healthy: boolean;
  /** What makes it unhealthy, one sentence each; empty when healthy. */
  readonly problems: readonly string[];
}

export interface ClusterStatus {
  readonly healthy: boolean;
  /** When the answers were gathered (ISO 8601). */
  readonly asked_at: string;
  readonly pods: readonly PodRow[];
}

/** The name a StatefulSet gives an ordinal, when the agent does not say. */
const podNameOf = (set: string, ordinal: number) => (set ? `${set}-${ordinal}` : `ordinal ${ordinal}`);

function behindPrimary(replicaGtid: string | null, usesGtid: boolean | null, primaryGtid: string | null | undefined): BehindPrimary {
  const unknown = (reason: string): BehindPrimary => ({ transactions: null, reason });
  if (usesGtid === false) return unknown('replicates by binlog position');
  if (primaryGtid === undefined) return unknown('the primary did not answer');
  if (primaryGtid === null || !isGtidState(primaryGtid)) return unknown("the primary's GTID state is unknown");
  if (replicaGtid === null || !isGtidState(replicaGtid)) return unknown('its GTID state is unknown');
  // The two states were read moments apart: a replica may have applied writes the primary's
  // answer predates. Ahead is then caught up, not an error.
  const order = compareGtid(replicaGtid, primaryGtid);
  if (order === 'ahead' || order === 'equal') return { transactions: 0, reason: null };
  if (order === 'diverged') return unknown("diverged from the primary's");
  return { transactions: gtidDistance(primaryGtid, replicaGtid), reason: null };
}

/**
 * One row per asked ordinal, in ordinal order. Pods that do not answer are named after `set`,
 * or when it is unknown (a template without {set}) after the pods that answered.
 */
export function buildStatus(reports: readonly PeerReport[], set: string, askedAt: Date): ClusterStatus {
  const sorted = [...reports].sort((a, b) => a.ordinal - b.ordinal);
  const name = set || (sorted.map((r) => parsePodName(r.status?.pod ?? '')).find((p) => p !== null)?.set ?? '');
  const primary = sorted.find((r) => r.ordinal === 0)?.status ?? null;
  const primaryGtid = primary === null ? undefined : primary.role === 'primary' ? primary.gtidExecuted : null;
  const pods = sorted.map((report): PodRow => {
    const { ordinal, host, status: s } = report;
    const pod = s?.pod ?? podNameOf(name, ordinal);
    if (s === null) {
      return {
        ordinal, pod, host, answered: false, error: report.error,
        role: null, ready: null, not_ready_reason: null, server_version: null, source_host: null, io_running: null, sql_running: null,
        seconds_behind: null, gtid_executed: null, behind_primary: null, backup: null, clone: null,
        healthy: false, problems: [`no answer: ${report.error ?? 'unknown'}`],
      };
    }
    const problems: string[] = [];
    // A template that points at the wrong pods shows here rather than as a healthy-looking row.
    if (s.ordinal !== null && s.ordinal !== ordinal) problems.push(`answers as ordinal ${s.ordinal} (check PEER_HOST_TEMPLATE)`);
    const expected = roleOf(ordinal as Ordinal);
    if (s.role !== expected) problems.push(`answers as ${s.role}, expected ${expected} at ordinal ${ordinal}`);
    if (!s.ready) problems.push(`not ready: ${s.notReadyReason ?? 'no reason given'}`);
    const b = s.backup;
    const c = s.clone;
    return {
      ordinal, pod, host, answered: true, error: null,
      role: s.role,
      ready: s.ready,
      not_ready_reason: s.notReadyReason,
      server_version: s.serverVersion,
      source_host: s.sourceHost,
      io_running: s.ioRunning,
      sql_running: s.sqlRunning,
      seconds_behind: s.secondsBehind,
      gtid_executed: s.gtidExecuted,
      behind_primary: s.role === 'replica' ? behindPrimary(s.gtidExecuted, s.usesGtid, primaryGtid) : null,
      backup: b && { started_at: b.startedAt, finished_at: b.finishedAt, bytes: b.bytes, failure: b.failure },
      clone: c && { source_host: c.sourceHost, source_ordinal: c.sourceOrdinal, choice: c.choice, finished_at: c.finishedAt, bytes: c.bytes },
      healthy: problems.length === 0,
      problems,
    };
  });
  return { healthy: pods.every((p) => p.healthy), asked_at: askedAt.toISOString(), pods };
}

/** The exit status: 0 when every pod is healthy, 1 when one is not. */
export const exitCodeOf = (status: ClusterStatus): 0 | 1 => (status.healthy ? 0 : 1);
