/**
 * agent/cluster/ is asking the peers' agents how they are, for init (choosing a clone source,
 * guarding an empty primary) and for status (the cluster at a glance).
 *
 * GET /status on each peer, in parallel, with a short timeout.
 * The answer is reduced to what choosing a clone source, guarding an empty primary and showing
 * the cluster need; `parsePeerStatus` is pure, `probePeers` is the network edge.
 */
import { errorMessage } from '../core/errors.js';
import { getText } from '../core/http-get.js';
import { type AgentTransport, PLAIN_HTTP, tlsFailure } from '../core/tls.js';

/** A backup a peer serves or served, as its /status shows it. */
export interface PeerBackup {
  readonly startedAt: string | null;
  /** null while it is being served. */
  readonly finishedAt: string | null;
  readonly bytes: number | null;
  /** null on success (or while being served). */
  readonly failure: string | null;
}

/** Where a peer's datadir was cloned from (init's record, as its /status shows it). */
export interface PeerClone {
  readonly sourceHost: string | null;
  readonly sourceOrdinal: number | null;
  readonly choice: string | null;
  readonly finishedAt: string | null;
  readonly bytes: number | null;
}

/** What a peer's /status says, as far as other pods and `status` care. */
export interface PeerStatus {
  readonly pod: string | null;
  /** The ordinal it says it is (null from an agent that does not say). */
  readonly ordinal: number | null;
  readonly serverVersion: string | null;
  readonly role: 'primary' | 'replica';
  readonly ready: boolean;
  readonly notReadyReason: string | null;
  /** Replica: configured with both threads running. */
  readonly replicating: boolean;
  readonly ioRunning: string | null;
  readonly sqlRunning: string | null;
  /** Seconds_Behind_Master; null when unknown (SQL thread stopped, not connected). */
  readonly secondsBehind: number | null;
  /** Replica: whether it follows the primary by GTID (MariaDB Using_Gtid, MySQL Auto_Position); null when unknown. */
  readonly usesGtid: boolean | null;
  readonly servingBackup: boolean;
  /** The datadir is initialised (holds `mysql/`). */
  readonly holdsData: boolean;
  /** Executed GTID state (see README, /status); null when unknown. */
  readonly gtidExecuted: string | null;
  /** Primary: the GTID state before its oldest binary log; null when unknown or on a replica. */
  readonly binlogStartGtid: string | null;
  /** Replica: the host it replicates from. */
  readonly sourceHost: string | null;
  /** The backup being served, else the last one finished since the sidecar started. */
  readonly backup: PeerBackup | null;
  readonly clone: PeerClone | null;
}

/** One peer and what it answered, or why it did not. */
export interface PeerReport {
  readonly ordinal: number;
  readonly host: string;
  readonly status: PeerStatus | null;
  /** Why there is no status: no answer, an HTTP error, an answer that does not parse. */
  readonly error: string | null;
  /** The system error's code when there is one (ENOTFOUND, EAI_AGAIN, ECONNREFUSED, ETIMEDOUT). */
  readonly code: string | null;
  /** Set when its agent answered the connection but TLS with it failed (why): it runs, and cannot be trusted. */
  readonly tlsFailure?: string;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const obj = (v: unknown): Record<string, unknown> | null => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null);

function backupOf(v: unknown): PeerBackup | null {
  const b = obj(v);
  return b && { startedAt: str(b.started_at), finishedAt: str(b.finished_at), bytes: num(b.bytes), failure: str(b.failure) };
}

function cloneOf(v: unknown): PeerClone | null {
  const c = obj(v);
  const source = obj(c?.source);
  return c && { sourceHost: str(source?.host), sourceOrdinal: num(source?.ordinal), choice: str(source?.choice), finishedAt: str(c.finished_at), bytes: num(c.bytes) };
}

/** Reads a /status body; throws when it is not the answer of a mysql-agent sidecar. */
export function parsePeerStatus(body: unknown): PeerStatus {
  if (typeof body !== 'object' || body === null) throw new Error('/status is not a JSON object');
  const s = body as Record<string, unknown>;
  if (s.role !== 'primary' && s.role !== 'replica') throw new Error('/status has no role');
  const r = obj(s.replication) ?? {};
  const io = str(r.io_running);
  const sql = str(r.sql_running);
  return {
    pod: str(s.pod),
    ordinal: num(s.ordinal),
    serverVersion: str(s.server_version),
    role: s.role,
    ready: s.ready === true,
    notReadyReason: str(s.not_ready_reason),
    replicating: typeof s.replicating === 'boolean' ? s.replicating : io === 'Yes' && sql === 'Yes',
    ioRunning: io,
    sqlRunning: sql,
    secondsBehind: num(r.seconds_behind),
    usesGtid: typeof r.uses_gtid === 'boolean' ? r.uses_gtid : null,
    servingBackup: s.serving_backup === true || (s.backup_in_progress !== null && s.backup_in_progress !== undefined),
    // Agents older than this field: a replica that replicates, or tried to, was cloned and holds data.
    holdsData: typeof s.holds_data === 'boolean' ? s.holds_data : io !== null || sql !== null,
    gtidExecuted: str(s.gtid_executed),
    binlogStartGtid: str(s.binlog_start_gtid),
    sourceHost: str(r.source_host),
    backup: backupOf(s.backup_in_progress) ?? backupOf(s.last_backup),
    clone: cloneOf(s.clone),
  };
}

/**
 * GET http(s)://host:port/status?fresh=1 with a deadline for the whole exchange: the sidecar answers
 * from a reading begun after the request (its readings are up to a second old otherwise), so a
 * decision never rests on a GTID state older than the question. Older sidecars ignore the query.
 * A TLS failure names its cause.
 */
export async function fetchStatus(host: string, port: number, timeoutMs: number, transport: AgentTransport = PLAIN_HTTP): Promise<unknown> {
  const { status, text } = await getText(
    (onResponse) => transport.request({ host, port, path: '/status?fresh=1', method: 'GET', headers: { accept: 'application/json' } }, onResponse),
    {
      timeoutMs,
      maxChars: 1_000_000,
      timeout: () => Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' }),
      tooLarge: () => new Error('/status answer too large'),
    },
  ).catch((err: NodeJS.ErrnoException) => {
    const cause = tlsFailure(err);
    throw cause === null ? err : Object.assign(new Error(`TLS: ${cause}`), { code: err.code, tlsFailure: cause });
  });
  if (status !== 200) throw new Error(`/status answered HTTP ${status}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error('/status is not JSON');
  }
}

/** fetchStatus over a transport: what init and status ask the peers with. */
export const statusOver =
  (transport: AgentTransport): typeof fetchStatus =>
  (host, port, timeoutMs) =>
    fetchStatus(host, port, timeoutMs, transport);

/** Asks every peer at once; never rejects: a peer that does not answer is reported with the reason. */
export async function probePeers(
  peers: readonly { readonly ordinal: number; readonly host: string }[],
  port: number,
  timeoutMs: number,
  fetch: typeof fetchStatus = fetchStatus,
): Promise<PeerReport[]> {
  return Promise.all(
    peers.map(async ({ ordinal, host }): Promise<PeerReport> => {
      try {
        return { ordinal, host, status: parsePeerStatus(await fetch(host, port, timeoutMs)), error: null, code: null };
      } catch (err) {
        const { code, tlsFailure } = err as NodeJS.ErrnoException & { tlsFailure?: string };
        return { ordinal, host, status: null, error: errorMessage(err), code: typeof code === 'string' ? code : null, ...(tlsFailure ? { tlsFailure } : {}) };
      }
    }),
  );
}
