/**
 * The sidecar's HTTP surface: GET /backup (bearer token, one at a time, status trailer) and
 * HEAD /backup (the same answer, nothing started), /healthz, /readyz and /status; over HTTPS
 * only when TLS_DIR is set, /backup then also only for a client certificate of the same CA with
 * TLS_CLIENT_AUTH=require. Routing and HTTP semantics only; the work is done by the
 * BackupService and the status source passed in.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { STATUS_CODES, randomFillSync } from '../core/builtins.js';
import { Readable, type Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { type ClientAuth, type TlsMaterial, serverTlsOptions } from '../core/tls.js';
import {
  BACKUP_PATH,
  ENCODINGS_HEADER,
  ESTIMATE_HEADER,
  PROBE_BYTES,
  PROBE_PATH,
  STATUS_TRAILER,
  STARTED_HEADER,
  STREAM_UPGRADE,
  UPGRADES_HEADER,
  bearerToken,
  statusChunk,
  statusTrailer,
  tokensEqual,
} from '../stream/protocol.js';
import type { BackupService, RunningBackup } from './backup.js';
import { type Compression, compressor, zstdFrame } from '../stream/compression.js';
import { chunkCollector } from '../stream/meter.js';
import { rateCap } from '../stream/rate.js';
import type { Logger } from '../core/log.js';

export interface Readiness {
  readonly ready: boolean;
  readonly reason: string | null;
}

/** Longest a `/status?fresh=1` request waits for the next reading before answering from the one held. */
const FRESH_WAIT_MS = 2500;

export interface StatusSource {
  readiness(): Promise<Readiness>;
  status(): Promise<Record<string, unknown>>;
  /** Resolves once a reading begun after this call is held (or after `timeoutMs`). */
  fresh(timeoutMs: number): Promise<void>;
  /** Why a backup must not be served now (e.g. a replica not yet replicating), or null. */
  backupRefusal(): string | null;
}

const RETRY_BUSY_S = 30;
const RETRY_NOT_READY_S = 10;

/**
 * Port 3307 is open to every pod: a client that sends its request slowly, or sits on an idle
 * connection, must not keep sockets. A GET has nothing but headers. A socket silent for
 * SOCKET_IDLE_TIMEOUT_MS is closed, except under a backup, whose silences (a tool waiting for a
 * lock) are watched by watchIdleClient instead.
 */
export const HTTP_TIMEOUTS = {
  headersMs: 5000,
  requestMs: 10_000,
  keepAliveMs: 5000,
  socketIdleMs: 30_000,
  /** How often Node checks the two above; its default, 30 s, would let them run late. */
  checkEveryMs: 1000,
} as const;

/**
 * Ends a backup whose client stopped reading: `out` stays backpressured (nothing drains) for
 * `timeoutMs`. A tool that is merely slow to produce output does not count.
 */
function watchIdleClient(out: Writable, written: () => number, log: FastifyBaseLogger, run: RunningBackup, timeoutMs: number): void {
  const step = Math.min(1000, timeoutMs);
  let stalledFor = 0;
  let last = -1;
  const timer = setInterval(() => {
    const progress = written();
    stalledFor = out.writableNeedDrain && progress === last ? stalledFor + step : 0;
    last = progress;
    if (stalledFor >= timeoutMs) {
      clearInterval(timer);
      log.warn({ idle_ms: stalledFor }, 'backup client stopped reading: ending the backup');
      run.abort(`client stopped reading for ${Math.round(stalledFor / 1000)} s`);
      out.destroy();
    }
  }, step);
  timer.unref();
  out.once('close', () => clearInterval(timer));
}

const PROBE_CHUNK_BYTES = 256 * 1024;
/** Fresh random bytes, so that no compression between (a proxy, a tunnel) makes the link look faster than it is. */
function* probeChunks(bytes: number): Generator<Buffer> {
  // Sent chunks are dead at once: collected as a backup's are, or 16 MB of them would wait for V8.
  const collect = chunkCollector();
  for (let left = bytes; left > 0; left -= PROBE_CHUNK_BYTES) {
    const n = Math.min(left, PROBE_CHUNK_BYTES);
    collect(n);
    yield randomFillSync(Buffer.allocUnsafe(n));
  }
}

/** Whether a request's Accept-Encoding lists zstd. */
const acceptsZstd = (headers: IncomingHttpHeaders): boolean => /(^|[\s,])zstd($|[\s,;])/i.test(String(headers['accept-encoding'] ?? ''));

/** A whole HTTP/1.1 answer written on a raw socket (the upgrade path), then the connection closed. */
function answerRaw(socket: Socket, status: number, headers: Record<string, string>, body: unknown): void {
  const text = JSON.stringify(body);
  const lines = Object.entries({ ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), connection: 'close' });
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${lines.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${text}`);
}

export function buildHttpServer(deps: {
  /** A backup whose client reads nothing for this long is ended. */
  readonly idleTimeoutMs: number;
  /** BACKUP_MAX_RATE: MB/s on the wire, or null. */
  readonly maxRateMbS?: number | null;
  readonly token: string | null;
  readonly backups: BackupService;
  readonly status: StatusSource;
  readonly log: Logger;
  /** GET /metrics in the Prometheus text format (metrics.ts). */
  readonly metrics?: { readonly contentType: string; render(): Promise<string> };
  /** HTTPS only, from TLS_DIR's files; absent: plain HTTP. */
  readonly tls?: { readonly material: TlsMaterial; readonly clientAuth: ClientAuth };
}): FastifyInstance {
  const tls = deps.tls;
  // Fastify's types follow the server kind; the routes below are the same for both.
  const app = (Fastify as (options: object) => FastifyInstance)({
    ...(tls ? { https: serverTlsOptions(tls.material, tls.clientAuth) } : {}),
    loggerInstance: deps.log.child({ phase: 'http' }) as FastifyBaseLogger,
    // The form fastify 5.12 wants: the top-level `disableRequestLogging` prints a deprecation
    // (FSTDEP023) as plain text on stderr at every start.
    logController: new LogController({ disableRequestLogging: true }),
    // A stalled client must not keep the agent from shutting down.
    forceCloseConnections: true,
    http: { headersTimeout: HTTP_TIMEOUTS.headersMs, connectionsCheckingInterval: HTTP_TIMEOUTS.checkEveryMs },
    requestTimeout: HTTP_TIMEOUTS.requestMs,
    keepAliveTimeout: HTTP_TIMEOUTS.keepAliveMs,
    connectionTimeout: HTTP_TIMEOUTS.socketIdleMs,
  });
  app.addHook('onRequest', async (req) => {
    // A backup's socket may be quiet for long (the tool preparing); fastify.inject's socket has no timer.
    if (req.routeOptions.url === BACKUP_PATH) req.raw.socket.setTimeout?.(0);
  });

  if (tls) {
    // A plain-HTTP request (or a client that trusts another CA) ends in the handshake: it gets nothing.
    (app.server as HttpsServer).on('tlsClientError', (err: NodeJS.ErrnoException, socket) =>
      app.log.warn({ client: socket.remoteAddress, code: err.code, err: err.message }, 'TLS handshake failed (a plain-HTTP client, or one that does not trust our certificate)'),
    );
  }

  /** Why a client certificate is refused under TLS_CLIENT_AUTH=require (logged), or null when it passes. */
  const refusedCertificate = (req: IncomingMessage, client: string): string | null => {
    if (tls?.clientAuth !== 'require') return null;
    const socket = req.socket as TLSSocket;
    if (socket.authorized) return null;
    const reason = socket.getPeerCertificate().subject === undefined ? 'no client certificate' : `client certificate refused: ${String(socket.authorizationError)}`;
    app.log.warn({ client, url: req.url, reason }, 'backup request refused');
    return reason;
  };
  /** Why a request's credentials are refused (logged), or null when they pass. */
  const refusedToken = (req: IncomingMessage, client: string): string | null => {
    if (deps.token === null) return null;
    const given = bearerToken(req.headers.authorization);
    if (given !== null && tokensEqual(given, deps.token)) return null;
    const reason = given === null ? 'no bearer token' : 'wrong token';
    app.log.warn({ client, url: req.url, reason }, 'backup request refused');
    return reason;
  };
  const UNAUTHORIZED = { error: 'a valid bearer token is required' };
  const certificateRequired = (reason: string) => ({ error: `${reason}: TLS_CLIENT_AUTH=require serves /backup only to a certificate of this cluster's CA` });
  const authenticate = async (req: FastifyRequest, reply: FastifyReply) => {
    const certificate = refusedCertificate(req.raw, req.ip);
    if (certificate !== null) return reply.code(403).send(certificateRequired(certificate));
    if (refusedToken(req.raw, req.ip) !== null) return reply.code(401).header('www-authenticate', 'Bearer').send(UNAUTHORIZED);
  };

  const notReady = (reply: FastifyReply, refusal: string) =>
    reply.code(503).header('retry-after', String(RETRY_NOT_READY_S)).send({ error: refusal });
  const BUSY = { error: 'a backup is already running' };
  const busy = (reply: FastifyReply) => reply.code(429).header('retry-after', String(RETRY_BUSY_S)).send(BUSY);

  // HEAD says what a GET would get now (the status, the size estimate) and starts nothing. By
  // default fastify answers HEAD with the GET handler: a whole backup, thrown away, holding the slot.
  app.head(BACKUP_PATH, { onRequest: authenticate }, async (_req, reply) => {
    const refusal = deps.status.backupRefusal();
    if (refusal !== null) return notReady(reply, refusal);
    if (deps.backups.inProgress !== null) return busy(reply);
    const estimate = await deps.backups.estimate();
    if (estimate !== null) reply.header(ESTIMATE_HEADER, String(estimate));
    reply.header(UPGRADES_HEADER, STREAM_UPGRADE).header(ENCODINGS_HEADER, 'zstd');
    return reply.header('content-type', 'application/octet-stream').send();
  });

  // Incompressible bytes for a receiver to time the link with (CLONE_COMPRESSION=auto): nothing
  // started, the slot not taken, the same credentials and rate cap as a backup.
  app.get<{ Querystring: { bytes?: string } }>(PROBE_PATH, { onRequest: authenticate }, async (req, reply) => {
    const asked = req.query.bytes ?? String(PROBE_BYTES.default);
    const bytes = /^\d{1,9}$/.test(asked) ? Number(asked) : NaN;
    if (!(bytes >= 1 && bytes <= PROBE_BYTES.max)) return reply.code(400).send({ error: `bytes must be a whole number from 1 to ${PROBE_BYTES.max}` });
    reply.header('content-type', 'application/octet-stream').header('content-length', String(bytes));
    // In bytes, not objects: Readable.from's default of 16 objects held 4 MiB of chunks ahead.
    const body = Readable.from(probeChunks(bytes), { objectMode: false, highWaterMark: PROBE_CHUNK_BYTES });
    return reply.send(deps.maxRateMbS ? body.pipe(rateCap(deps.maxRateMbS)) : body);
  });

  app.get(BACKUP_PATH, { onRequest: authenticate, exposeHeadRoute: false }, async (req, reply) => {
    const refusal = deps.status.backupRefusal();
    if (refusal !== null) return notReady(reply, refusal);
    // zstd when asked (Accept-Encoding) and installed: the receiver stores it as it comes.
    const run = await deps.backups.start(req.ip, acceptsZstd(req.headers) ? 'zstd' : 'none');
    if (run === 'busy') {
      req.log.info({ client: req.ip }, 'backup refused: another one is running');
      return busy(reply);
    }
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) run.abort('client disconnected');
    });
    watchIdleClient(reply.raw, () => reply.raw.socket?.bytesWritten ?? 0, reply.log.child({ client: req.ip }), run, deps.idleTimeoutMs);
    // From here to send() nothing awaits: the tool's output must be piped in the turn it started.
    if (run.estimatedBytes !== null) reply.header(ESTIMATE_HEADER, String(run.estimatedBytes));
    reply.header('content-type', 'application/octet-stream');
    if (run.encoding === 'zstd') reply.header('content-encoding', 'zstd');
    reply.trailer(STATUS_TRAILER, async () => statusTrailer(await run.finished));
    // The headers go out as the stream is piped, not with the tool's first byte, which may come
    // minutes later (locks, a checkpoint): the receiver learns at once that it was accepted.
    reply.raw.once('pipe', () => reply.raw.flushHeaders());
    return reply.send(deps.maxRateMbS ? run.stream.pipe(rateCap(deps.maxRateMbS)) : run.stream);
  });

  // GET /backup upgraded to the bare xbstream (protocol.ts): the same checks and answers, then
  // the tool's bytes as they come and the verdict as the stream's last file.
  app.server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    socket.on('error', () => socket.destroy());
    const client = socket.remoteAddress ?? 'unknown';
    void (async () => {
      if (req.method !== 'GET' || req.url !== BACKUP_PATH || req.headers.upgrade?.toLowerCase() !== STREAM_UPGRADE) {
        return answerRaw(socket, 404, {}, { error: `only GET ${BACKUP_PATH} upgrades, to ${STREAM_UPGRADE}` });
      }
      const certificate = refusedCertificate(req, client);
      if (certificate !== null) return answerRaw(socket, 403, {}, certificateRequired(certificate));
      if (refusedToken(req, client) !== null) return answerRaw(socket, 401, { 'www-authenticate': 'Bearer' }, UNAUTHORIZED);
      const refusal = deps.status.backupRefusal();
      if (refusal !== null) return answerRaw(socket, 503, { 'retry-after': String(RETRY_NOT_READY_S) }, { error: refusal });
      // Compressed only when the receiver asks (Accept-Encoding: zstd): it then hands the socket
      // to a decompressor rather than to its stream tool. A zstd child where installed, else here.
      const encoding: Compression = acceptsZstd(req.headers) ? 'zstd' : 'none';
      const run = await deps.backups.start(client, encoding);
      if (run === 'busy') {
        app.log.info({ client }, 'backup refused: another one is running');
        return answerRaw(socket, 429, { 'retry-after': String(RETRY_BUSY_S) }, BUSY);
      }
      // From here on nothing awaits before the pipe: the tool's output must be piped in the turn it started.
      let finished = false;
      socket.once('close', () => {
        if (!finished) run.abort('client disconnected');
      });
      // The server keeps sockets half-open; a receiver never ends its side while it reads, so
      // its end is its going away (else writes into the void go on until a reset comes back).
      socket.once('end', () => socket.destroy());
      watchIdleClient(socket, () => socket.bytesWritten, app.log.child({ client }), run, deps.idleTimeoutMs);
      const extra = [
        `${STARTED_HEADER}: ${run.startedAt}`,
        ...(run.estimatedBytes === null ? [] : [`${ESTIMATE_HEADER}: ${run.estimatedBytes}`]),
        ...(encoding === 'zstd' ? ['content-encoding: zstd'] : []),
      ];
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${STREAM_UPGRADE}\r\n${extra.map((h) => `${h}\r\n`).join('')}\r\n`);
      // tool → [zstd here, unless the tool's stdout went to a zstd child] → [cap on wire bytes] → socket
      const zipHere = encoding === 'zstd' && run.encoding === 'none';
      const stages = [...(zipHere ? [compressor('zstd')] : []), ...(deps.maxRateMbS ? [rateCap(deps.maxRateMbS)] : [])];
      const outlet: Writable = stages[0] ?? socket;
      [...stages, socket].reduce((from, to) => from.pipe(to));
      // The client gone (or a stage failing) ends them all: no write reaches a closed socket unhandled.
      for (const stage of stages) stage.on('error', () => socket.destroy());
      socket.once('close', () => stages.forEach((stage) => stage.destroy()));
      run.stream.pipe(outlet, { end: false });
      // `finished` comes after the tool's stdout ended, so every byte of it is queued before the verdict.
      const failure = await run.finished;
      finished = true;
      // After the child's frame, the verdict in a frame of its own: receivers read one stream of frames.
      const verdict = statusChunk(failure, run.bytes());
      if (!socket.destroyed) outlet.end(run.encoding === 'zstd' ? zstdFrame(verdict) : verdict);
    })().catch((err: unknown) => {
      app.log.error({ client, err: err instanceof Error ? err.message : String(err) }, 'upgraded backup request failed');
      socket.destroy();
    });
  });

  app.get('/healthz', async () => ({ ok: true }));

  app.get('/readyz', async (_req, reply) => {
    const readiness = await deps.status.readiness();
    return reply.code(readiness.ready ? 200 : 503).send(readiness);
  });

  // ?fresh=1: the answer comes from a reading begun after the request arrived (at most about a
  // second later), for the pods that decide on it; every such request waits for the same reading.
  app.get<{ Querystring: { fresh?: string } }>('/status', async (req) => {
    if (req.query.fresh !== undefined) await deps.status.fresh(FRESH_WAIT_MS);
    return deps.status.status();
  });

  const metrics = deps.metrics;
  if (metrics) app.get('/metrics', async (_req, reply) => reply.header('content-type', metrics.contentType).send(await metrics.render()));

  return app;
}
