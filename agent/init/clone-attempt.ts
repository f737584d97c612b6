/**
 * One clone attempt: GET the peer's backup stream and extract it into the staging directory
 * through a child stream tool, with backpressure end to end, then check that the stream is
 * complete. It does not retry, prepare or touch DATA_DIR: clone.ts does.
 */
import type { IncomingMessage } from 'node:http';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BACKUP_PATH, CLOSING_FILES, ESTIMATE_HEADER, STATUS_TRAILER, SUCCESS } from '../stream/protocol.js';
import type { ToolCommand } from '../stream/backup-tool.js';
import { spawnOwned } from '../stream/child.js';
import { CloneError, errorMessage } from '../core/errors.js';
import { meterChunks } from '../stream/meter.js';
import { NO_SPACE, filledUp, freeBytes, mb, prepareMargin } from '../stream/sizes.js';
import type { Logger } from '../core/log.js';
import { type AgentTransport, tlsFailure } from '../core/tls.js';
import { hostPort } from '../core/topology.js';

export interface CloneSource {
  readonly host: string;
  readonly port: number;
  readonly token: string | null;
  /** Plain HTTP, or HTTPS verified against TLS_DIR's ca.crt and the host name (core/tls.ts). */
  readonly transport: AgentTransport;
}

export interface CloneResult {
  readonly bytes: number;
  readonly durationMs: number;
}

/**
 * How long a peer may take, one clock at a time: to accept the connection; from then to the
 * first byte of the backup (headers included: the tool may first wait for `--lock-ddl` behind a
 * long ALTER, checkpoint, or open hundreds of thousands of tablespaces); and between bytes after
 * that. CLONE_CONNECT_TIMEOUT, CLONE_FIRST_BYTE_TIMEOUT, CLONE_IDLE_TIMEOUT.
 */
export interface StreamTimeouts {
  readonly connectMs: number;
  readonly firstByteMs: number;
  readonly idleMs: number;
}

/** An answer of the peer, and its clocks. */
export interface Connection {
  readonly res: IncomingMessage;
  /** Why the peer was given up on when one of its clocks ran out (the pipe only sees "aborted"), else null. */
  expired(): CloneError | null;
  /** The stream is read from now: its first byte stops the first-byte clock and starts the idle one. */
  streaming(bytesSoFar: () => number): void;
}

const PROGRESS_INTERVAL_MS = 10_000;
/** Errors that say the peer is not (yet) reachable: retried with backoff. */
const TRANSIENT_NETWORK = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']);

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

/** GET /backup from a peer's agent, its clocks running; network failures become retryable CloneErrors. */
export function connect(source: CloneSource, timeouts: StreamTimeouts, signal: AbortSignal): Promise<Connection> {
  const peer = hostPort(source.host, source.port);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { te: 'trailers' };
    if (source.token !== null) headers.authorization = `Bearer ${source.token}`;
    const req = source.transport.request({ host: source.host, port: source.port, path: BACKUP_PATH, method: 'GET', headers, signal });
    let expired: CloneError | null = null;
    let clock: NodeJS.Timeout | undefined;
    const runClock = (ms: number, why: () => string) => {
      clearTimeout(clock);
      clock = setTimeout(() => {
        expired = new CloneError(why(), true);
        req.destroy(expired);
      }, ms);
    };
    runClock(timeouts.connectMs, () => `peer ${peer} did not accept a connection within ${seconds(timeouts.connectMs)} (CLONE_CONNECT_TIMEOUT)`);
    req.once('socket', (socket) => {
      const connected = () =>
        runClock(timeouts.firstByteMs, () => `peer ${peer} sent no byte of the backup within ${seconds(timeouts.firstByteMs)} of connecting (CLONE_FIRST_BYTE_TIMEOUT)`);
      if (socket.connecting) socket.once('connect', connected);
      else connected();
    });
    req.once('close', () => clearTimeout(clock));
    req.once('response', (res) => {
      resolve({
        res,
        expired: () => expired,
        streaming: (bytesSoFar) =>
          res.once('data', () => {
            clearTimeout(clock);
            req.setTimeout(timeouts.idleMs, () => {
              expired = new CloneError(`peer ${peer} sent nothing for ${seconds(timeouts.idleMs)} after ${bytesSoFar()} bytes (CLONE_IDLE_TIMEOUT)`, true);
              req.destroy(expired);
            });
          }),
      });
    });
    req.once('error', (err: NodeJS.ErrnoException) => {
      if (expired) reject(expired);
      else if (signal.aborted) reject(err);
      else if (tlsFailure(err) !== null) reject(new CloneError(`TLS to peer ${peer} failed: ${tlsFailure(err)}`, false, { cause: err }));
      else if (err.code && TRANSIENT_NETWORK.has(err.code)) reject(new CloneError(`peer ${peer} unreachable (${err.code})`, true, { cause: err }));
      else reject(new CloneError(`request to ${peer} failed: ${err.message}`, true, { cause: err }));
    });
    req.end();
  });
}

/** Maps a non-200 answer to a retryable or fatal CloneError. */
export function refusal(res: IncomingMessage, peer: string): CloneError {
  const status = res.statusCode ?? 0;
  res.resume();
  if (status === 403) {
    // The sidecar answers 403 only for a missing or foreign client certificate (TLS_CLIENT_AUTH=require), 401 for the token.
    return new CloneError(`peer ${peer} requires a client certificate of its CA (HTTP 403, TLS_CLIENT_AUTH=require): set TLS_DIR to this pod's Certificate of the same issuer`, false);
  }
  if (status === 401) {
    return new CloneError(`peer ${peer} refused our token (HTTP ${status}): BACKUP_TOKEN must be the same secret on every pod`, false);
  }
  const retryAfter = Number(res.headers['retry-after']);
  const err = new CloneError(
    status === 429 ? `peer ${peer} is busy serving another backup (HTTP 429)` : `peer ${peer} answered HTTP ${status}`,
    true,
  );
  return Object.assign(err, { retryAfterMs: Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined });
}

/** The closing files (protocol.ts) a complete stream leaves that `dir` lacks. */
export async function missingClosingFiles(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (const alternatives of CLOSING_FILES) {
    let found = false;
    for (const name of alternatives) {
      try {
        await access(join(dir, name));
        found = true;
        break;
      } catch {
        /* try the next spelling */
      }
    }
    if (!found) missing.push(alternatives.join(' or '));
  }
  return missing;
}

/**
 * Streams the peer's backup into `stagingDir` (which must be empty). Resolves only when the
 * sender's trailer says Success, the stream tool exited 0 and the closing files are present.
 */
export async function cloneInto(
  source: CloneSource,
  stagingDir: string,
  extract: ToolCommand,
  log: Logger,
  signal: AbortSignal,
  timeouts: StreamTimeouts,
): Promise<CloneResult> {
  const peer = hostPort(source.host, source.port);
  const started = Date.now();
  const local = new AbortController();
  const onAbort = () => local.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const counter = { bytes: 0 };
  const progress = setInterval(() => {
    const seconds = (Date.now() - started) / 1000;
    log.info({ phase: 'stream', peer, bytes: counter.bytes, rate_mb_s: +(counter.bytes / 1e6 / seconds).toFixed(1) }, 'clone progress');
  }, PROGRESS_INTERVAL_MS);
  try {
    const connection = await connect(source, timeouts, local.signal);
    const { res } = connection;
    if (res.statusCode !== 200) throw refusal(res, peer);
    const estimate = Number(res.headers[ESTIMATE_HEADER] ?? NaN);
    const free = await freeBytes(stagingDir);
    if (Number.isFinite(estimate) && estimate + prepareMargin(estimate) > free) {
      res.destroy();
      throw new CloneError(
        `the clone needs about ${mb(estimate)} (the peer's estimate) plus ${mb(prepareMargin(estimate))} for prepare but DATA_DIR's filesystem has ${mb(free)} free: grow the volume or free space`,
        false,
      );
    }
    log.info({ phase: 'stream', peer, estimated_bytes: Number.isFinite(estimate) ? estimate : null, free_bytes: free }, 'peer accepted, streaming');
    const child = spawnOwned({
      ...extract,
      stdin: 'pipe',
      stdout: 'ignore',
      signal: local.signal,
      killWith: 'SIGKILL',
      log,
      watchFor: NO_SPACE,
    });
    // On every path out of the stream tool, a full volume is named: retrying would fill it again.
    const filledUpError = async (messages: readonly (string | null)[], cause?: unknown): Promise<CloneError | null> => {
      if (local.signal.aborted || !filledUp([...messages, child.watched()], await freeBytes(stagingDir).catch(() => Infinity))) return null;
      const needed = Number.isFinite(estimate) ? `about ${mb(estimate)} (the peer's estimate)` : `more than ${mb(counter.bytes)}`;
      return new CloneError(
        `DATA_DIR's filesystem filled up after ${mb(counter.bytes)} of the clone: it needs ${needed} and had ${mb(free)} free; grow the volume or free space`,
        false,
        { cause },
      );
    };
    try {
      connection.streaming(() => counter.bytes);
      meterChunks(res, counter);
      await pipeline(res, child.stdin!);
    } catch (err) {
      const expired = connection.expired();
      if (expired) throw expired;
      // A broken pipe closes the tool's stdin, so it exits by itself; when the tool is what
      // failed (disk full, corrupt chunk), its stderr says more than the pipe error does.
      const toolErr = await child.done.then(() => null, (e: unknown) => e);
      const toolSays = toolErr === null ? child.stderrTail() : errorMessage(toolErr);
      throw (await filledUpError([toolSays, errorMessage(err)], err)) ??
        new CloneError(`stream from ${peer} broke after ${counter.bytes} bytes: ${toolSays === '' ? errorMessage(err) : `${errorMessage(err)}; ${toolSays}`}`, true, { cause: err });
    }
    try {
      await child.done;
    } catch (err) {
      // The whole stream was read, then the tool failed: writing its last buffers, say.
      throw (await filledUpError([errorMessage(err)], err)) ?? new CloneError(`extracting the stream from ${peer} failed: ${errorMessage(err)}`, true, { cause: err });
    }
    // mbstream exits 0 after "File exists" or "invalid filename" and stops extracting; on
    // success it prints nothing, so anything on its stderr fails the clone.
    if (child.stderrTail() !== '') {
      throw (await filledUpError([child.stderrTail()])) ?? new CloneError(`extracting the stream from ${peer} failed: ${child.stderrTail()}`, true);
    }
    const status = res.trailers[STATUS_TRAILER];
    if (status !== SUCCESS) {
      throw new CloneError(
        status === undefined
          ? `stream from ${peer} ended after ${counter.bytes} bytes without a status trailer: the sender stopped before finishing`
          : `sender ${peer} reported the backup failed after ${counter.bytes} bytes (${status})`,
        true,
      );
    }
    const missing = await missingClosingFiles(stagingDir);
    if (missing.length > 0) {
      throw new CloneError(`stream from ${peer} is incomplete: no ${missing.join(', ')} after ${counter.bytes} bytes`, true);
    }
    return { bytes: counter.bytes, durationMs: Date.now() - started };
  } finally {
    clearInterval(progress);
    signal.removeEventListener('abort', onAbort);
    local.abort();
  }
}
