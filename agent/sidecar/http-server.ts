/**
 * The sidecar's HTTP surface: GET /backup (bearer token, one at a time, status trailer) and
 * HEAD /backup (the same answer, nothing started), /healthz, /readyz and /status. Routing and HTTP semantics only; the work is done by the
 * BackupService and the status source passed in.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { BACKUP_PATH, ESTIMATE_HEADER, STATUS_TRAILER, bearerToken, statusTrailer, tokensEqual } from '../stream/protocol.js';
import type { BackupService, RunningBackup } from './backup.js';
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
 * Ends a backup whose client stopped reading: the response stays backpressured (nothing
 * drains) for `timeoutMs`. A tool that is merely slow to produce output does not count.
 */
function watchIdleClient(reply: FastifyReply, run: RunningBackup, timeoutMs: number): void {
  const step = Math.min(1000, timeoutMs);
  let stalledFor = 0;
  let written = -1;
  const timer = setInterval(() => {
    const res = reply.raw;
    const progress = res.socket?.bytesWritten ?? 0;
    stalledFor = res.writableNeedDrain && progress === written ? stalledFor + step : 0;
    written = progress;
    if (stalledFor >= timeoutMs) {
      clearInterval(timer);
      reply.log.warn({ client: reply.request.ip, idle_ms: stalledFor }, 'backup client stopped reading: ending the backup');
      run.abort(`client stopped reading for ${Math.round(stalledFor / 1000)} s`);
      res.destroy();
    }
  }, step);
  timer.unref();
  reply.raw.once('close', () => clearInterval(timer));
}

export function buildHttpServer(deps: {
  /** A backup whose client reads nothing for this long is ended. */
  readonly idleTimeoutMs: number;
  readonly token: string | null;
  readonly backups: BackupService;
  readonly status: StatusSource;
  readonly log: Logger;
  /** GET /metrics in the Prometheus text format (metrics.ts). */
  readonly metrics?: { readonly contentType: string; render(): Promise<string> };
}): FastifyInstance {
  const app = Fastify({
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
    if (req.routeOptions.url === BACKUP_PATH) req.raw.socket.setTimeout(0);
  });

  const authenticate = async (req: FastifyRequest, reply: FastifyReply) => {
    if (deps.token === null) return;
    const given = bearerToken(req.headers.authorization);
    if (given === null || !tokensEqual(given, deps.token)) {
      req.log.warn({ client: req.ip, url: req.url, reason: given === null ? 'no bearer token' : 'wrong token' }, 'backup request refused');
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'a valid bearer token is required' });
    }
  };

  const notReady = (reply: FastifyReply, refusal: string) =>
    reply.code(503).header('retry-after', String(RETRY_NOT_READY_S)).send({ error: refusal });
  const busy = (reply: FastifyReply) => reply.code(429).header('retry-after', String(RETRY_BUSY_S)).send({ error: 'a backup is already running' });

  // HEAD says what a GET would get now (the status, the size estimate) and starts nothing. By
  // default fastify answers HEAD with the GET handler: a whole backup, thrown away, holding the slot.
  app.head(BACKUP_PATH, { onRequest: authenticate }, async (_req, reply) => {
    const refusal = deps.status.backupRefusal();
    if (refusal !== null) return notReady(reply, refusal);
    if (deps.backups.inProgress !== null) return busy(reply);
    const estimate = await deps.backups.estimate();
    if (estimate !== null) reply.header(ESTIMATE_HEADER, String(estimate));
    return reply.header('content-type', 'application/octet-stream').send();
  });

  app.get(BACKUP_PATH, { onRequest: authenticate, exposeHeadRoute: false }, async (req, reply) => {
    const refusal = deps.status.backupRefusal();
    if (refusal !== null) return notReady(reply, refusal);
    const run = await deps.backups.start(req.ip);
    if (run === 'busy') {
      req.log.info({ client: req.ip }, 'backup refused: another one is running');
      return busy(reply);
    }
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) run.abort('client disconnected');
    });
    watchIdleClient(reply, run, deps.idleTimeoutMs);
    // From here to send() nothing awaits: the tool's output must be piped in the turn it started.
    if (run.estimatedBytes !== null) reply.header(ESTIMATE_HEADER, String(run.estimatedBytes));
    reply.header('content-type', 'application/octet-stream');
    reply.trailer(STATUS_TRAILER, async () => statusTrailer(await run.finished));
    // The headers go out as the stream is piped, not with the tool's first byte, which may come
    // minutes later (locks, a checkpoint): the receiver learns at once that it was accepted.
    reply.raw.once('pipe', () => reply.raw.flushHeaders());
    return reply.send(run.stream);
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
