/**
 * One clone attempt: GET the peer's backup stream and extract it into the staging directory
 * through a child stream tool, with backpressure end to end, then check that the stream is
 * complete. It does not retry, prepare or touch DATA_DIR: clone.ts does.
 *
 * A peer that offers the bare-xbstream upgrade (protocol.ts) gets an upgraded GET whose socket
 * is handed to the stream tool as its stdin: no byte of the stream passes through JavaScript
 * here. Over TLS the upgraded stream is read here (no HTTP parser, no chunk framing: a third
 * less CPU than the plain GET) and written on. Any other peer gets the plain GET, piped through
 * (chunked body, trailer).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { access, readFile, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import {
  BACKUP_PATH,
  CLOSING_FILES,
  ENCODINGS_HEADER,
  PROBE_BYTES,
  PROBE_PATH,
  type ResponseHead,
  STARTED_HEADER,
  STATUS_FILE,
  STATUS_TRAILER,
  STREAM_UPGRADE,
  SUCCESS,
  UPGRADES_HEADER,
  estimatedBytesOf,
  parseResponseHead,
  parseStatusFile,
} from '../stream/protocol.js';
import type { ToolCommand } from '../stream/backup-tool.js';
import { type OwnedChild, spawnOwned } from '../stream/child.js';
import { CloneError, errorMessage } from '../core/errors.js';
import { getText } from '../core/http-get.js';
import { childReadBytes, chunkCollector, meterChunks } from '../stream/meter.js';
import { gatherInto } from '../stream/coalesce.js';
import { type Compression, decompressor } from '../stream/compression.js';
import { rateCap } from '../stream/rate.js';
import { NO_SPACE, filledUp, freeBytes, mb, prepareMargin, progress } from '../stream/sizes.js';
import type { Logger } from '../core/log.js';
import { type AgentTransport, tlsFailure } from '../core/tls.js';
import { hostPort } from '../core/topology.js';

export interface CloneSource {
  readonly host: string;
  readonly port: number;
  readonly token: string | null;
  /** Plain HTTP, or HTTPS verified against TLS_DIR's ca.crt and the host name (core/tls.ts). */
  readonly transport: AgentTransport;
  /** What the stream may come compressed with (CLONE_COMPRESSION; auto: zstd on a slow link); only the upgraded framing compresses. */
  readonly accept?: Compression | 'auto';
  /** CLONE_MAX_RATE: MB/s read off the wire, or null. */
  readonly maxRateMbS?: number | null;
  /** CLONE_COMPRESSION_AUTO_BELOW: with `auto`, zstd is asked for when the link times below this (default AUTO_ZSTD_BELOW_MB_S). */
  readonly autoZstdBelowMbS?: number;
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
export function connect(source: CloneSource, timeouts: StreamTimeouts, signal: AbortSignal, accept: Compression = 'none'): Promise<Connection> {
  const peer = hostPort(source.host, source.port);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { te: 'trailers' };
    if (source.token !== null) headers.authorization = `Bearer ${source.token}`;
    // A sender that can answers with Content-Encoding: zstd; an older one or one without zstd sends raw.
    if (accept === 'zstd') headers['accept-encoding'] = 'zstd';
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
    req.once('error', (err: NodeJS.ErrnoException) => reject(networkError(err, peer, expired, signal)));
    req.end();
  });
}

/** What a failed connection is reported as: the clock that ran out, unreachable (retried), or the error. */
function networkError(err: NodeJS.ErrnoException, peer: string, expired: CloneError | null, signal: AbortSignal): Error {
  if (expired) return expired;
  if (signal.aborted) return err;
  const tls = tlsFailure(err);
  if (tls !== null) return new CloneError(`TLS to peer ${peer} failed: ${tls}`, false, { cause: err });
  if (err.code && TRANSIENT_NETWORK.has(err.code)) return new CloneError(`peer ${peer} unreachable (${err.code})`, true, { cause: err });
  return new CloneError(`request to ${peer} failed: ${err.message}`, true, { cause: err });
}

const authorization = (source: CloneSource): Record<string, string> => (source.token === null ? {} : { authorization: `Bearer ${source.token}` });

/** How long the HEAD probe may take (at most half of any clock): a peer slow to answer it gets the plain GET rather than a delay. */
const PROBE_MS = 2000;

/**
 * Whether the peer's HEAD /backup offers the bare-xbstream upgrade: how long it took to say so
 * (the GET measures the datadir the same way), or null. Anything else (an older sender, a
 * refusal, no answer) means the plain GET, which reports what is wrong in its own words.
 */
function offersUpgrade(source: CloneSource, timeouts: StreamTimeouts, signal: AbortSignal): Promise<{ readonly ms: number; readonly zstd: boolean } | null> {
  const asked = Date.now();
  return new Promise((resolve) => {
    const req = source.transport.request({ host: source.host, port: source.port, path: BACKUP_PATH, method: 'HEAD', headers: authorization(source), signal, timeout: Math.min(PROBE_MS, timeouts.connectMs, timeouts.firstByteMs / 2, timeouts.idleMs / 2) });
    req.once('response', (res) => {
      res.resume();
      const list = (name: string) => String(res.headers[name] ?? '').split(',').map((t) => t.trim().toLowerCase());
      const zstd = list(ENCODINGS_HEADER).includes('zstd');
      resolve(res.statusCode === 200 && list(UPGRADES_HEADER).includes(STREAM_UPGRADE) ? { ms: Date.now() - asked, zstd } : null);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(null));
    req.end();
  });
}

/**
 * CLONE_COMPRESSION_AUTO_BELOW's default, MB/s: a 1 Gbit/s link times at ~117, where zstd -1 (at
 * 400–700 MB/s a core) sends a smaller stream sooner; past a few Gbit/s the compressor and the
 * decompression in init are the bottleneck (README, Performance: `npm run bench -- --link`).
 */
export const AUTO_ZSTD_BELOW_MB_S = 150;
/** Past this share of the timing spent running or waiting for a CPU, the receiver, not the link, set the rate. */
const BUSY_SHARE = 0.5;
/** Timing the link takes at most this long; what arrived by then gives the rate (a slow link, then). */
const LINK_PROBE_MS = 3000;

/** Nanoseconds this thread has run and waited for a CPU (the kernel's schedstat), or null where unreadable. */
function schedNs(): number | null {
  try {
    const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
    return Number.isFinite(run) && Number.isFinite(wait) ? run! + wait! : null;
  } catch {
    return null;
  }
}

/** A timed link: MB/s, and the share of that time this process was running or waiting for a CPU (null: unknown). */
interface LinkTiming {
  readonly mbS: number;
  readonly busy: number | null;
}

/**
 * The link's rate in MB/s, as the sender's PROBE_PATH times it from the first byte to the last
 * (TCP's ramp-up left out with the first chunk), or null when it could not be timed.
 */
function timeLink(source: CloneSource, signal: AbortSignal): Promise<LinkTiming | null> {
  return new Promise((resolve) => {
    let first: { at: number; bytes: number; sched: number | null } | null = null;
    let bytes = 0;
    const rate = (): LinkTiming | null => {
      if (!first || bytes <= first.bytes) return null;
      const seconds = Math.max(0.001, (performance.now() - first.at) / 1000);
      const sched = schedNs();
      return { mbS: (bytes - first.bytes) / 1e6 / seconds, busy: sched === null || first.sched === null ? null : (sched - first.sched) / 1e9 / seconds };
    };
    const req = source.transport.request({ host: source.host, port: source.port, path: `${PROBE_PATH}?bytes=${PROBE_BYTES.default}`, method: 'GET', headers: authorization(source), signal });
    const clock = setTimeout(() => {
      resolve(rate());
      req.destroy();
    }, LINK_PROBE_MS);
    const done = (value: LinkTiming | null) => {
      clearTimeout(clock);
      resolve(value);
    };
    req.once('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return done(null);
      }
      const collect = chunkCollector();
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        collect(chunk.length);
        first ??= { at: performance.now(), bytes, sched: schedNs() };
      });
      res.once('end', () => done(rate()));
      res.once('error', () => done(null));
    });
    req.once('error', () => done(null));
    req.end();
  });
}

/**
 * What to ask the sender to compress the upgraded stream with: CLONE_COMPRESSION, `auto` decided by
 * timing the link. `unzstdChild`: a compressed stream would be decompressed by a `zstd -d` child,
 * not by this thread, so how busy this thread was says nothing against compression.
 */
async function chooseEncoding(source: CloneSource, offersZstd: boolean, unzstdChild: boolean, signal: AbortSignal, log: Logger): Promise<Compression> {
  const wanted = source.accept ?? 'none';
  if (wanted !== 'auto') return wanted;
  if (!offersZstd) return 'none';
  const timed = await timeLink(source, signal);
  const below = source.autoZstdBelowMbS ?? AUTO_ZSTD_BELOW_MB_S;
  // A receiver that was busy most of the time (running, or waiting for a CPU) timed itself, not
  // the link: decompressing here would only take more of the CPU it lacks. A zstd child costs
  // this thread nothing (on the bench's 1 Gbit/s link it halved the clone, busy or not).
  const linkBound = timed !== null && (unzstdChild || timed.busy === null || timed.busy < BUSY_SHARE);
  const chosen: Compression = linkBound && timed.mbS < below ? 'zstd' : 'none';
  log.info(
    {
      phase: 'stream',
      peer: hostPort(source.host, source.port),
      link_mb_s: timed === null ? null : +timed.mbS.toFixed(1),
      busy: timed?.busy == null ? null : +timed.busy.toFixed(2),
      unzstd_child: unzstdChild,
      compression: chosen,
      zstd_below_mb_s: below,
    },
    'CLONE_COMPRESSION=auto: timed the link',
  );
  return chosen;
}

/** The upgraded request got no upgraded answer, nor a refusal: the plain GET is tried instead. */
class UpgradeIgnored extends Error {}

/**
 * How long the upgraded GET may take to answer beyond twice what HEAD took: `101` is written
 * as soon as the tool is spawned. Something between that passed the request on and never
 * answered (a proxy that drops the 101) gets the plain GET instead of CLONE_FIRST_BYTE_TIMEOUT.
 */
const UPGRADE_ANSWER_MS = 5000;

/** How long a fallback to the plain GET waits for the sender to end the backup the ignored upgrade started. */
const FALLBACK_BUSY_WAIT_MS = 5000;

/**
 * The upgraded connection when the peer offers it and answers it, else null after `log`ging why;
 * network errors, clocks and refusals are the attempt's failure.
 */
async function tryUpgraded(source: CloneSource, timeouts: StreamTimeouts, unzstdChild: boolean, signal: AbortSignal, log: Logger): Promise<UpgradedConnection | null | 'fell back'> {
  const offer = await offersUpgrade(source, timeouts, signal);
  if (offer === null) return null;
  const encoding = await chooseEncoding(source, offer.zstd, unzstdChild, signal, log);
  try {
    return await connectUpgraded(source, encoding, timeouts, signal, UPGRADE_ANSWER_MS + 2 * offer.ms);
  } catch (err) {
    if (!(err instanceof UpgradeIgnored)) throw err;
    log.warn({ phase: 'stream', peer: hostPort(source.host, source.port), err: err.message }, 'upgrade ignored: using the plain GET');
    return 'fell back';
  }
}

/** The plain GET; after an ignored upgrade, asked again while the sender still ends the backup that one started (429). */
async function connectPlain(source: CloneSource, timeouts: StreamTimeouts, signal: AbortSignal, fellBack: boolean): Promise<Connection> {
  const until = Date.now() + FALLBACK_BUSY_WAIT_MS;
  for (;;) {
    const connection = await connect(source, timeouts, signal);
    if (!fellBack || connection.res.statusCode !== 429 || Date.now() >= until) return connection;
    connection.res.resume();
    await delay(200, undefined, { signal });
  }
}

/** An upgraded answer: its head, the socket (reading paused), and what was read past the head. */
interface UpgradedConnection {
  readonly head: ResponseHead;
  readonly socket: Socket;
  readonly leftover: Buffer;
  /** Delivers the rest of the body to `take` (copies); `take` returns false to pause until `resume()`. */
  body(take: (chunk: Buffer) => boolean): void;
}

const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Sends the upgraded GET and reads the answer's head. The socket reads into a buffer of its own
 * (`onread`) so that pausing really stops reading: a plain socket reads ahead into its queue,
 * and those bytes would never reach the stream tool that gets the socket.
 */
function connectUpgraded(source: CloneSource, encoding: Compression, timeouts: StreamTimeouts, signal: AbortSignal, answerMs: number): Promise<UpgradedConnection> {
  const peer = hostPort(source.host, source.port);
  return new Promise((resolve, reject) => {
    let expired: CloneError | null = null;
    let pending = Buffer.alloc(0);
    let take: ((chunk: Buffer) => boolean) | null = null;
    const early: Buffer[] = [];
    let settled = false;
    let clock: NodeJS.Timeout | undefined;
    const runClock = (ms: number, why: string | UpgradeIgnored) => {
      clearTimeout(clock);
      clock = setTimeout(() => {
        if (why instanceof UpgradeIgnored) {
          settled = true;
          socket.destroy();
          return reject(why);
        }
        expired = new CloneError(why, true);
        socket.destroy(expired);
      }, ms);
    };
    runClock(timeouts.connectMs, `peer ${peer} did not accept a connection within ${seconds(timeouts.connectMs)} (CLONE_CONNECT_TIMEOUT)`);
    const socket = source.transport.connect({
      host: source.host,
      port: source.port,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (n, buf) => {
          const chunk = Buffer.from(buf.subarray(0, n));
          if (take) return take(chunk);
          // A TLS socket hands over every record it decrypted from one read, paused or not.
          if (settled) {
            early.push(chunk);
            return false;
          }
          pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
          let head: ResponseHead | null;
          try {
            head = parseResponseHead(pending);
          } catch (err) {
            socket.destroy(new CloneError(`peer ${peer} answered the upgraded request with garbage: ${errorMessage(err)}`, true));
            return false;
          }
          if (head === null) return true;
          settled = true;
          clearTimeout(clock);
          if (head.status >= 200 && head.status < 300) {
            // Something between (a proxy passing headers but not upgrades) or the sender ignored
            // the Upgrade: a plain answer, and a backup started for it that closing ends.
            socket.destroy();
            reject(new UpgradeIgnored(`peer ${peer} answered the upgraded request with HTTP ${head.status}`));
            return false;
          }
          resolve({
            head,
            socket,
            leftover: pending.subarray(head.length),
            body: (t) => {
              take = t;
              let more = true;
              // Each is written; a false one has asked for the resume once drained.
              for (const chunk of early.splice(0)) more = t(chunk) && more;
              if (more) socket.resume();
            },
          });
          return false;
        },
      },
    });
    socket.once('connect', () =>
      timeouts.firstByteMs <= answerMs
        ? runClock(timeouts.firstByteMs, `peer ${peer} sent no byte of the backup within ${seconds(timeouts.firstByteMs)} of connecting (CLONE_FIRST_BYTE_TIMEOUT)`)
        : runClock(answerMs, new UpgradeIgnored(`peer ${peer} did not answer the upgraded request within ${seconds(answerMs)}`)),
    );
    const onAbort = () => socket.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('close', () => signal.removeEventListener('abort', onAbort));
    // Kept for the socket's life: later errors (the peer resetting it mid-stream) end the tool's input, not the agent.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(clock);
      if (!settled) reject(networkError(err, peer, expired, signal));
    });
    socket.once('close', () => {
      clearTimeout(clock);
      if (!settled) reject(expired ?? new UpgradeIgnored(`peer ${peer} closed the upgraded request before answering`));
    });
    const lines = [`GET ${BACKUP_PATH} HTTP/1.1`, `host: ${peer}`, 'connection: upgrade', `upgrade: ${STREAM_UPGRADE}`];
    if (encoding === 'zstd') lines.push('accept-encoding: zstd');
    for (const [k, v] of Object.entries(authorization(source))) lines.push(`${k}: ${v}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
}

/**
 * Why the sender's last backup failed, from its /status, or null: on the upgraded framing the
 * verdict is inside the stream, and a tool killed mid-chunk leaves a stream the stream tool
 * refuses before it gets there. The sender records the failure before it ends the stream.
 */
async function senderFailure(source: CloneSource, startedAt: string | undefined): Promise<string | null> {
  if (startedAt === undefined) return null;
  try {
    const { status, text } = await getText((onResponse) => source.transport.request({ host: source.host, port: source.port, path: '/status' }, onResponse), {
      timeoutMs: PROBE_MS,
      maxChars: 1024 * 1024,
      timeout: () => new Error('timeout'),
      tooLarge: () => new Error('too large'),
    });
    const last = status === 200 ? (JSON.parse(text) as { last_backup?: { failure?: unknown; started_at?: unknown } | null }).last_backup : null;
    // Ours (the 101 named it), not an earlier one; none while ours still runs.
    return last?.started_at === startedAt && typeof last.failure === 'string' ? last.failure : null;
  } catch {
    return null;
  }
}

/** Maps a non-200 answer to a retryable or fatal CloneError. */
export function refusal(status: number, headers: IncomingHttpHeaders | Readonly<Record<string, string>>, peer: string): CloneError {
  if (status === 403) {
    // The sidecar answers 403 only for a missing or foreign client certificate (TLS_CLIENT_AUTH=require), 401 for the token.
    return new CloneError(`peer ${peer} requires a client certificate of its CA (HTTP 403, TLS_CLIENT_AUTH=require): set TLS_DIR to this pod's Certificate of the same issuer`, false);
  }
  if (status === 401) {
    return new CloneError(`peer ${peer} refused our token (HTTP ${status}): BACKUP_TOKEN must be the same secret on every pod`, false);
  }
  const retryAfter = Number(headers['retry-after']);
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

/** How the stream got to the tool: its bytes, the sender's verdict (undefined when none came), and a clock that ran out. */
interface Transfer {
  /** Resolves when the body has been delivered to the tool; rejects when delivering it broke. */
  readonly delivered: Promise<void>;
  readonly bytes: () => number;
  /** Read once the tool has exited. */
  readonly verdict: () => Promise<string | undefined>;
  readonly expired: () => CloneError | null;
  readonly close: () => void;
}

const contentEncoding = (headers: Readonly<Record<string, string>>): Compression => (headers['content-encoding'] === 'zstd' ? 'zstd' : 'none');

/** Growth of the stream tool's read count past its own start-up reads (libraries, locale): the stream has begun. */
const STARTED_READING_BYTES = 64 * 1024;
const POLL_MS = 1000;

/**
 * The upgraded body: the socket handed to the tool (raw, nothing read past the head: the usual
 * case), or handed to a `zstd -d` child whose output is the tool's stdin (compressed, with zstd
 * installed); else (TLS, a cap, bytes read past the head, no zstd) written to the tool's stdin
 * through the agent's decompressor (a corrupt frame fails its checksum in either). The clocks
 * watch the tool's read count when no byte passes here.
 */
function upgradedTransfer(
  connection: UpgradedConnection,
  spawn: (stdin: Readable | 'pipe') => OwnedChild,
  spawnUnzstd: ((stdin: Socket) => OwnedChild) | null,
  peer: string,
  timeouts: StreamTimeouts,
  stagingDir: string,
  maxRateMbS: number | null | undefined,
  /** Whether a child may read the socket at all (cloneInto's `socketToChild`). */
  socketToChild: boolean,
): [OwnedChild, Transfer] {
  const { socket, leftover } = connection;
  const encoding = contentEncoding(connection.head.headers);
  const cap = maxRateMbS ?? null;
  const handOver = socketToChild && leftover.length === 0 && (encoding === 'none' || spawnUnzstd !== null);
  // socket → zstd -d → tool, child to child; our copy of the pipe between them is closed, so
  // each sees the other end go when it exits.
  const unzstd = handOver && encoding === 'zstd' ? spawnUnzstd!(socket) : null;
  const child = spawn(handOver ? (unzstd?.stdout ?? socket) : 'pipe');
  unzstd?.stdout!.destroy();
  // Bytes of the xbstream (after decompression), as the sender counts them and the estimate is.
  const counted = { bytes: 0 };
  let delivered: Promise<void>;
  if (handOver) {
    // A corrupt frame fails zstd (checksum): the stream is broken, whatever the tool made of its part.
    delivered = Promise.all([child.done.then(() => undefined, () => undefined), unzstd?.done]).then(() => undefined);
  } else {
    // wire → [cap] → [zstd] → tool, counted after decompression
    const unpack = decompressor(encoding);
    meterChunks(unpack, counted);
    const inlet = cap === null ? unpack : rateCap(cap);
    delivered = inlet === unpack ? pipeline(unpack, gatherInto(child.stdin!)) : pipeline(inlet, unpack, gatherInto(child.stdin!));
    const write = (chunk: Buffer) => {
      if (inlet.write(chunk)) return true;
      inlet.once('drain', () => socket.resume());
      return false;
    };
    if (leftover.length > 0) write(leftover);
    connection.body(write);
    socket.once('end', () => inlet.end());
    socket.once('error', (err) => inlet.destroy(err));
  }
  let expired: CloneError | null = null;
  const startedAt = Date.now();
  let lastBytes = -1;
  let lastChange = Date.now();
  let baseline: number | null = null;
  const poll = setInterval(() => {
    void (async () => {
      const read = handOver ? await childReadBytes(child.pid) : counted.bytes;
      if (read === null) return;
      baseline ??= Math.min(read, STARTED_READING_BYTES);
      if (handOver) counted.bytes = Math.max(0, read - baseline);
      if (read !== lastBytes) {
        lastBytes = read;
        lastChange = Date.now();
        return;
      }
      const begun = counted.bytes > STARTED_READING_BYTES;
      if (!begun && Date.now() - startedAt >= timeouts.firstByteMs) {
        expired = new CloneError(`peer ${peer} sent no byte of the backup within ${seconds(timeouts.firstByteMs)} of connecting (CLONE_FIRST_BYTE_TIMEOUT)`, true);
      } else if (begun && Date.now() - lastChange >= timeouts.idleMs) {
        expired = new CloneError(`peer ${peer} sent nothing for ${seconds(timeouts.idleMs)} after ${counted.bytes} bytes (CLONE_IDLE_TIMEOUT)`, true);
      }
      if (expired) {
        unzstd?.kill();
        child.kill();
        socket.destroy();
      }
    })();
  }, Math.min(POLL_MS, timeouts.idleMs, timeouts.firstByteMs));
  let verdictBytes: number | null = null;
  return [
    child,
    {
      delivered,
      bytes: () => verdictBytes ?? counted.bytes,
      expired: () => expired,
      verdict: async () => {
        const file = join(stagingDir, STATUS_FILE);
        const text = await readFile(file, 'utf8').catch(() => null);
        await rm(file, { force: true });
        if (text === null) return undefined;
        const { status, bytes } = parseStatusFile(text);
        verdictBytes = bytes;
        return status;
      },
      close: () => {
        clearInterval(poll);
        unzstd?.kill();
        socket.destroy();
      },
    },
  ];
}

/** The plain body: piped from the response into the tool's stdin, counted on the way; the verdict is the trailer. */
function plainTransfer(connection: Connection, child: OwnedChild, cap: number | null): Transfer {
  const counter = { bytes: 0 };
  connection.streaming(() => counter.bytes);
  meterChunks(connection.res, counter);
  return {
    delivered: cap === null ? pipeline(connection.res, gatherInto(child.stdin!)) : pipeline(connection.res, rateCap(cap), gatherInto(child.stdin!)),
    bytes: () => counter.bytes,
    expired: () => connection.expired(),
    verdict: async () => connection.res.trailers[STATUS_TRAILER],
    close: () => {},
  };
}

/**
 * Streams the peer's backup into `stagingDir` (which must be empty). Resolves only when the
 * sender's verdict says Success, the stream tool exited 0 and the closing files are present.
 */
export async function cloneInto(
  source: CloneSource,
  stagingDir: string,
  extract: ToolCommand,
  log: Logger,
  signal: AbortSignal,
  timeouts: StreamTimeouts,
  /** `zstd -d` (unzstdCommand), or null: a compressed stream is then decompressed here. */
  unzstd: ToolCommand | null = null,
): Promise<CloneResult> {
  const peer = hostPort(source.host, source.port);
  const started = Date.now();
  const local = new AbortController();
  const onAbort = () => local.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  let transfer: Transfer | null = null;
  let estimatedBytes: number | null = null;
  const logProgress = (msg: string) =>
    log.info({ phase: 'stream', peer, estimated_bytes: estimatedBytes, ...progress(transfer?.bytes() ?? 0, estimatedBytes, Date.now() - started) }, msg);
  const ticker = setInterval(() => logProgress('clone progress'), PROGRESS_INTERVAL_MS);
  try {
    // A child can read the socket only as plain TCP (TLS carries ciphertext) and uncapped (the cap reads it here).
    const socketToChild = source.transport.scheme === 'http' && (source.maxRateMbS ?? null) === null;
    const tried = await tryUpgraded(source, timeouts, socketToChild && unzstd !== null, local.signal, log);
    const upgraded = tried === 'fell back' ? null : tried;
    const plain = upgraded === null ? await connectPlain(source, timeouts, local.signal, tried === 'fell back') : null;
    const status = upgraded?.head.status ?? plain!.res.statusCode ?? 0;
    const headers = upgraded?.head.headers ?? plain!.res.headers;
    if (status !== (upgraded ? 101 : 200)) {
      if (plain) plain.res.resume();
      upgraded?.socket.destroy();
      throw refusal(status, headers, peer);
    }
    const estimate = estimatedBytesOf(headers);
    estimatedBytes = estimate;
    const free = await freeBytes(stagingDir);
    if (estimate !== null && estimate + prepareMargin(estimate) > free) {
      plain?.res.destroy();
      upgraded?.socket.destroy();
      throw new CloneError(
        `the clone needs about ${mb(estimate)} (the peer's estimate) plus ${mb(prepareMargin(estimate))} for prepare but DATA_DIR's filesystem has ${mb(free)} free: grow the volume or free space`,
        false,
      );
    }
    log.info(
      {
        phase: 'stream',
        peer,
        estimated_bytes: estimate,
        free_bytes: free,
        framing: upgraded ? STREAM_UPGRADE : 'chunked',
        compression: upgraded ? contentEncoding(upgraded.head.headers) : 'none',
      },
      'peer accepted, streaming',
    );
    const spawn = (stdin: Readable | 'pipe') =>
      spawnOwned({ ...extract, stdin, stdout: 'ignore', signal: local.signal, killWith: 'SIGKILL', log, watchFor: NO_SPACE });
    const spawnUnzstd = unzstd && ((stdin: Socket) => spawnOwned({ ...unzstd, stdin, stdout: 'pipe', signal: local.signal, killWith: 'SIGTERM', log }));
    let child: OwnedChild;
    if (upgraded) [child, transfer] = upgradedTransfer(upgraded, spawn, spawnUnzstd, peer, timeouts, stagingDir, source.maxRateMbS, socketToChild);
    else {
      child = spawn('pipe');
      transfer = plainTransfer(plain!, child, source.maxRateMbS ?? null);
    }
    const t = transfer;
    // On the upgraded framing, a stream refused before its verdict file: the sender's own word, when it has one.
    const reportedFailure = async (): Promise<CloneError | null> => {
      const failure = upgraded ? await senderFailure(source, upgraded.head.headers[STARTED_HEADER]) : null;
      return failure === null ? null : new CloneError(`sender ${peer} reported the backup failed after ${t.bytes()} bytes (Failed: ${failure})`, true);
    };
    // On every path out of the stream tool, a full volume is named: retrying would fill it again.
    const filledUpError = async (messages: readonly (string | null)[], cause?: unknown): Promise<CloneError | null> => {
      if (local.signal.aborted || !filledUp([...messages, child.watched()], await freeBytes(stagingDir).catch(() => Infinity))) return null;
      const needed = estimate !== null ? `about ${mb(estimate)} (the peer's estimate)` : `more than ${mb(t.bytes())}`;
      return new CloneError(
        `DATA_DIR's filesystem filled up after ${mb(t.bytes())} of the clone: it needs ${needed} and had ${mb(free)} free; grow the volume or free space`,
        false,
        { cause },
      );
    };
    try {
      await t.delivered;
    } catch (err) {
      const expired = t.expired();
      if (expired) throw expired;
      // A broken pipe closes the tool's stdin, so it exits by itself; when the tool is what
      // failed (disk full, corrupt chunk), its stderr says more than the pipe error does.
      const toolErr = await child.done.then(() => null, (e: unknown) => e);
      const toolSays = toolErr === null ? child.stderrTail() : errorMessage(toolErr);
      throw (await filledUpError([toolSays, errorMessage(err)], err)) ??
        (await reportedFailure()) ??
        new CloneError(`stream from ${peer} broke after ${t.bytes()} bytes: ${toolSays === '' ? errorMessage(err) : `${errorMessage(err)}; ${toolSays}`}`, true, { cause: err });
    }
    try {
      await child.done;
    } catch (err) {
      const expired = t.expired();
      if (expired) throw expired;
      // The whole stream was read, then the tool failed: writing its last buffers, say.
      throw (await filledUpError([errorMessage(err)], err)) ??
        (await reportedFailure()) ??
        new CloneError(`extracting the stream from ${peer} failed: ${errorMessage(err)}`, true, { cause: err });
    }
    const expired = t.expired();
    if (expired) throw expired;
    // mbstream exits 0 after "File exists" or "invalid filename" and stops extracting; on
    // success it prints nothing, so anything on its stderr fails the clone.
    if (child.stderrTail() !== '') {
      throw (await filledUpError([child.stderrTail()])) ??
        (await reportedFailure()) ??
        new CloneError(`extracting the stream from ${peer} failed: ${child.stderrTail()}`, true);
    }
    const verdict = await t.verdict();
    if (verdict === undefined) {
      const reported = await reportedFailure();
      if (reported) throw reported;
    }
    if (verdict !== SUCCESS) {
      throw new CloneError(
        verdict === undefined
          ? `stream from ${peer} ended after ${t.bytes()} bytes without a status trailer${upgraded ? ` (${STATUS_FILE})` : ''}: the sender stopped before finishing`
          : `sender ${peer} reported the backup failed after ${t.bytes()} bytes (${verdict})`,
        true,
      );
    }
    const missing = await missingClosingFiles(stagingDir);
    if (missing.length > 0) {
      throw new CloneError(`stream from ${peer} is incomplete: no ${missing.join(', ')} after ${t.bytes()} bytes`, true);
    }
    logProgress('clone progress: stream complete');
    return { bytes: t.bytes(), durationMs: Date.now() - started };
  } finally {
    clearInterval(ticker);
    transfer?.close();
    signal.removeEventListener('abort', onAbort);
    local.abort();
  }
}
