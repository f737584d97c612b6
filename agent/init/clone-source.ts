/**
 * Where a new replica clones from (CLONE_SOURCE).
 *
 * `auto` asks the agents of the lower ordinals for /status and ranks them: replicas that
 * replicate (both threads running) no more than CLONE_MAX_LAG seconds behind and are not
 * serving a backup, the closest ordinal first; then the primary, if it answers, is ready and
 * is not serving a backup. Everything else is skipped with a reason. `previous`, `primary` and
 * a host name are one fixed candidate, as the tutorial's ordinal − 1 was.
 *
 * `rankCloneSources` is the policy (pure, over the peers' answers); `cloneFromFirst` tries the
 * candidates in order and moves on when one is busy, down or breaks mid-stream.
 */
import { CloneError, errorMessage } from '../core/errors.js';
import type { SkippedPeer } from '../core/records.js';
import type { PeerReport } from '../cluster/peer-status.js';
import type { CloneSourceChoice } from './settings.js';

export interface Candidate {
  /** The peer's ordinal, when known (not for CLONE_SOURCE=<host>). */
  readonly ordinal: number | null;
  readonly host: string;
  /** Why this candidate, for logs and the clone record. */
  readonly why: string;
}

export interface SourceRanking {
  readonly candidates: readonly Candidate[];
  readonly skipped: readonly SkippedPeer[];
}

/** The peers `auto` asks: every ordinal below ours. */
export function lowerOrdinals(ordinal: number, hostOf: (ordinal: number) => string): { ordinal: number; host: string }[] {
  return Array.from({ length: ordinal }, (_, n) => ({ ordinal: n, host: hostOf(n) }));
}

/** The fixed candidate of CLONE_SOURCE=previous|primary|<host>; null for auto (and backup, which clones from peers only as its fallback). */
export function fixedCandidate(choice: CloneSourceChoice, ordinal: number, hostOf: (ordinal: number) => string): Candidate | null {
  switch (choice.kind) {
    case 'auto':
    case 'backup':
      return null;
    case 'previous':
      return { ordinal: ordinal - 1, host: hostOf(ordinal - 1), why: 'CLONE_SOURCE=previous' };
    case 'primary':
      return { ordinal: 0, host: hostOf(0), why: 'CLONE_SOURCE=primary' };
    case 'host':
      return { ordinal: null, host: choice.host, why: 'CLONE_SOURCE is a host' };
  }
}

/** Why a replica is not a good source, or null when it is one. */
function replicaProblem(report: PeerReport, maxLagSeconds: number): string | null {
  const s = report.status!;
  if (!s.holdsData) return 'holds no data';
  if (!s.replicating) {
    const threads = s.ioRunning === null && s.sqlRunning === null ? 'replication is not configured' : `IO thread ${s.ioRunning ?? '?'}, SQL thread ${s.sqlRunning ?? '?'}`;
    return `not replicating (${threads})`;
  }
  if (s.secondsBehind === null) return 'lag unknown (Seconds_Behind_Master is NULL)';
  if (s.secondsBehind > maxLagSeconds) return `${s.secondsBehind} s behind the primary (CLONE_MAX_LAG=${maxLagSeconds})`;
  if (s.servingBackup) return 'serving a backup';
  return null;
}

/**
 * Ranks the answers of the lower ordinals: caught-up replicas (closest ordinal first), then
 * the primary. Every peer left out is in `skipped` with the reason.
 */
export function rankCloneSources(reports: readonly PeerReport[], maxLagSeconds: number): SourceRanking {
  const replicas: Candidate[] = [];
  const primaries: Candidate[] = [];
  const skipped: SkippedPeer[] = [];
  const skip = (r: PeerReport, reason: string) => skipped.push({ ordinal: r.ordinal, host: r.host, reason });
  for (const r of [...reports].sort((a, b) => b.ordinal - a.ordinal)) {
    if (r.status === null) {
      skip(r, `no answer: ${r.error ?? 'unknown error'}`);
      continue;
    }
    if (r.status.role === 'primary') {
      if (!r.status.ready) skip(r, `primary not ready: ${r.status.notReadyReason ?? 'no reason given'}`);
      else if (r.status.servingBackup) skip(r, 'primary is serving a backup');
      else primaries.push({ ordinal: r.ordinal, host: r.host, why: 'the primary (no replica is caught up and free)' });
      continue;
    }
    const problem = replicaProblem(r, maxLagSeconds);
    if (problem) skip(r, problem);
    else replicas.push({ ordinal: r.ordinal, host: r.host, why: `replica ${r.status.secondsBehind} s behind, not serving a backup` });
  }
  return { candidates: [...replicas, ...primaries], skipped };
}

/** One line naming every candidate and what went wrong with it. */
export function describeFailures(failures: readonly { readonly candidate: Candidate | SkippedPeer; readonly reason: string }[]): string {
  return failures.map(({ candidate, reason }) => `${label(candidate)}: ${reason}`).join('; ');
}

export function label(c: { readonly ordinal: number | null; readonly host: string }): string {
  return c.ordinal === null ? c.host : `ordinal ${c.ordinal} (${c.host})`;
}

/**
 * Tries the candidates in order until one clone succeeds. A retryable failure (refused, 429,
 * broken stream) moves on to the next; a fatal one (a refused token) stops at once. When all
 * fail, a single candidate's own error is rethrown (it carries Retry-After); several give one
 * retryable CloneError naming each, and the skipped peers with their reasons.
 */
export async function cloneFromFirst<T>(
  ranking: SourceRanking,
  attempt: (candidate: Candidate) => Promise<T>,
  onFailure: (candidate: Candidate, err: unknown, remaining: number) => void,
): Promise<{ readonly result: T; readonly candidate: Candidate }> {
  const failures: { candidate: Candidate | SkippedPeer; reason: string }[] = ranking.skipped.map((s) => ({ candidate: s, reason: s.reason }));
  const errors: unknown[] = [];
  for (const [i, candidate] of ranking.candidates.entries()) {
    try {
      return { result: await attempt(candidate), candidate };
    } catch (err) {
      if (!(err instanceof CloneError) || !err.retryable) throw err;
      errors.push(err);
      failures.push({ candidate, reason: errorMessage(err) });
      onFailure(candidate, err, ranking.candidates.length - i - 1);
    }
  }
  if (errors.length === 1 && ranking.skipped.length === 0) throw errors[0];
  const waits = errors.map((e) => (e as { retryAfterMs?: number }).retryAfterMs).filter((ms): ms is number => ms !== undefined);
  const err = new CloneError(
    ranking.candidates.length === 0 ? `no peer to clone from: ${describeFailures(failures)}` : `no peer could be cloned from: ${describeFailures(failures)}`,
    true,
  );
  return Promise.reject(Object.assign(err, { retryAfterMs: waits.length === errors.length && waits.length > 0 ? Math.min(...waits) : undefined }));
}
