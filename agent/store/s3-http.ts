/**
 * Signed S3 requests over node:http(s) with the AWS SDK's own signer, credential chain and XML
 * parser, but not its S3 client: that client's command, serde and middleware modules held ~10 MB
 * of the archiving sidecar's heap (measured: the sidecar's RSS target is 100 MB). Every request
 * body is a Buffer or a range of an open file, so every request can be retried; responses stream.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Agent, ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { parseXML } from '@aws-sdk/xml-builder';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac, http, https } from '../core/builtins.js';
import { type Clock, retry } from '../core/retry.js';
import type { StoreConfig } from './settings.js';

export type Credentials = ConstructorParameters<typeof SignatureV4>[0]['credentials'];

/** A connection that does not open in this long is a store that is not there. */
const CONNECT_TIMEOUT_MS = 5_000;
/** A store that sends nothing for this long on an open request has stopped. */
const IDLE_TIMEOUT_MS = 120_000;
/** Transient failures of one request are retried for this long (the SDK's standard mode: 3 attempts). */
const REQUEST_RETRY = { deadlineMs: 5_000, initialDelayMs: 200, maxDelayMs: 2_000 };
const EMPTY_SHA256 = createHash('sha256').digest('hex');
export const TRANSIENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'SlowDown', 'RequestTimeout', 'InternalError', 'ServiceUnavailable']);

/** The store's refusal: its S3 error code (or, for a body-less answer, one named after the status). */
export class S3ResponseError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(`${code} (HTTP ${status})`);
    this.name = code;
  }
}

/** RFC 3986 escaping, as SigV4 canonicalises: encodeURIComponent leaves !'()* alone. */
export const escapeUri = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export interface Target {
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: number | undefined;
  /** Escaped, as sent. */
  readonly path: string;
}

/**
 * Where a request for `key` (null: the bucket itself) goes. Path style where configured, or where
 * the bucket's name has a dot (a virtual host with one would not match the endpoint's wildcard
 * certificate); virtual-hosted otherwise, as AWS prefers.
 */
export function targetOf(config: StoreConfig, key: string | null): Target {
  const url = new URL(config.endpoint ?? `https://s3.${config.region}.amazonaws.com`);
  const base = url.pathname.replace(/\/+$/, '');
  const object = key === null ? '' : `/${key.split('/').map(escapeUri).join('/')}`;
  const pathStyle = config.forcePathStyle || config.bucket.includes('.');
  return {
    protocol: url.protocol === 'http:' ? 'http:' : 'https:',
    hostname: pathStyle ? url.hostname : `${config.bucket}.${url.hostname}`,
    port: url.port === '' ? undefined : Number(url.port),
    path: pathStyle ? `${base}/${config.bucket}${object}` : `${base}${object || '/'}`,
  };
}

/** A query string whose parameters decode to what was signed (an empty value as a bare name: `?uploads`). */
export const queryString = (query: Readonly<Record<string, string>>) =>
  Object.entries(query)
    .map(([k, v]) => (v === '' ? escapeUri(k) : `${escapeUri(k)}=${escapeUri(v)}`))
    .join('&');

/** The error an S3 answer carries: the `<Error><Code>` of its body, else one named after its status. */
export function responseError(status: number, body: string): S3ResponseError {
  let code: string | undefined;
  try {
    const parsed = body.trim() === '' ? null : (parseXML(body) as { Error?: { Code?: unknown } });
    if (typeof parsed?.Error?.Code === 'string') code = parsed.Error.Code;
  } catch {
    // A proxy's HTML page: the status says enough.
  }
  const byStatus: Record<number, string> = { 403: 'Forbidden', 404: 'NotFound', 412: 'PreconditionFailed' };
  return new S3ResponseError(status, code ?? byStatus[status] ?? `HTTP${status}`);
}

/** A parsed XML answer's element that S3 repeats: absent, one, or several. */
export const many = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

export const parseXmlBody = (text: string): Record<string, unknown> => parseXML(text) as Record<string, unknown>;

type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytesOf = (d: SourceData) => (typeof d === 'string' ? d : d instanceof ArrayBuffer ? Buffer.from(d) : Buffer.from(d.buffer, d.byteOffset, d.byteLength));

/** node:crypto in the shape the signer asks for: a hash, or with a key an HMAC. */
class Sha256 {
  private h;
  constructor(private readonly secret?: SourceData) {
    this.h = this.fresh();
  }
  private fresh() {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', bytesOf(this.secret));
  }
  update(data: SourceData): void {
    this.h.update(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.h.digest();
  }
  reset(): void {
    this.h = this.fresh();
  }
}

const isRetryable = (err: unknown) => {
  const e = err as { code?: string; status?: number };
  return err instanceof S3ResponseError ? e.status! >= 500 || TRANSIENT.has(e.code!) : TRANSIENT.has(e.code ?? '');
};

/**
 * A body read from a file, never held whole: read once for the SHA-256 the signature carries and
 * once to send, through `buffer` (the caller's, reused; one request at a time uses it).
 */
export interface FileRange {
  readonly file: FileHandle;
  readonly position: number;
  readonly length: number;
  readonly buffer: Buffer;
}

export interface S3Request {
  readonly method: 'GET' | 'PUT' | 'POST' | 'HEAD' | 'DELETE';
  /** null: the bucket. */
  readonly key: string | null;
  readonly query?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer | FileRange;
  readonly signal?: AbortSignal;
}

/** Calls `each` with the range's bytes in order, one buffer's worth at a time; a file shorter than the range is an error. */
async function eachChunk(range: FileRange, each: (chunk: Buffer) => Promise<void> | void): Promise<void> {
  for (let done = 0; done < range.length; ) {
    const want = Math.min(range.buffer.length, range.length - done);
    const { bytesRead } = await range.file.read(range.buffer, 0, want, range.position + done);
    if (bytesRead === 0) throw new Error(`the file ended ${range.length - done} bytes before the part it was to send`);
    await each(range.buffer.subarray(0, bytesRead));
    done += bytesRead;
  }
}

async function sha256Of(body: Buffer | FileRange | undefined): Promise<string> {
  if (body === undefined) return EMPTY_SHA256;
  if (Buffer.isBuffer(body)) return createHash('sha256').update(body).digest('hex');
  const hash = createHash('sha256');
  await eachChunk(body, (chunk) => void hash.update(chunk));
  return hash.digest('hex');
}

/** Writes the range to the request and ends it; each chunk is handed to the socket before the buffer is read into again. */
async function sendRange(request: ClientRequest, range: FileRange): Promise<void> {
  await eachChunk(range, (chunk) => new Promise<void>((resolve, reject) => request.write(chunk, (err) => (err ? reject(err) : resolve()))));
  request.end();
}

export interface S3Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Unread: the caller reads or drains it. */
  readonly body: IncomingMessage;
}

/**
 * Keys in the environment are used as they are: the SDK's default chain would take them first
 * too, and importing the chain (for web identity, SSO, the container and instance roles) cost
 * ~50 ms of every store command's start. Without them, or with an expiry for them, the chain.
 */
export function defaultCredentials(env: NodeJS.ProcessEnv = process.env): Credentials {
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_SESSION_TOKEN: sessionToken } = env;
  if (accessKeyId && secretAccessKey && !env.AWS_CREDENTIAL_EXPIRATION) {
    const identity = { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
    return async () => identity;
  }
  let chain: ReturnType<typeof import('@aws-sdk/credential-provider-node').defaultProvider> | undefined;
  return async () => {
    chain ??= (await import('@aws-sdk/credential-provider-node')).defaultProvider();
    return chain();
  };
}

export class S3Http {
  private readonly signer: SignatureV4;
  private readonly agent: Agent;

  constructor(
    private readonly config: StoreConfig,
    credentials: Credentials = defaultCredentials(),
    private readonly clock?: Clock,
  ) {
    this.signer = new SignatureV4({ credentials, region: config.region, service: 's3', sha256: Sha256, uriEscapePath: false, applyChecksum: false });
    const options = { keepAlive: true, maxSockets: 16 };
    this.agent = targetOf(config, null).protocol === 'http:' ? new http.Agent(options) : new https.Agent(options);
  }

  /** One request, retried while the failure is transient; a 2xx answer's body unread, any other answer thrown as S3ResponseError. */
  async send(req: S3Request): Promise<S3Response> {
    const signal = req.signal ?? new AbortController().signal;
    // Once per request, not per attempt: a file range would be read again only to hash the same bytes.
    const payloadSha256 = await sha256Of(req.body);
    return retry(() => this.once(req, payloadSha256), { policy: REQUEST_RETRY, classify: (err) => ({ retry: isRetryable(err) }), onRetry: () => {}, signal, clock: this.clock });
  }

  /** A request whose answer is small: its body as text. */
  async text(req: S3Request): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
    const res = await this.send(req);
    return { status: res.status, headers: res.headers, text: await readAll(res.body) };
  }

  private async once(req: S3Request, payloadSha256: string): Promise<S3Response> {
    const target = targetOf(this.config, req.key);
    const query = req.query ?? {};
    const body = req.body;
    const host = target.port === undefined ? target.hostname : `${target.hostname}:${target.port}`;
    const signed = await this.signer.sign({
      method: req.method,
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      path: target.path,
      query: { ...query },
      headers: {
        ...req.headers,
        host,
        'x-amz-content-sha256': payloadSha256,
        ...(body === undefined ? {} : { 'content-length': String(body.length) }),
      },
    });
    const qs = queryString(query);
    return new Promise<S3Response>((resolveAnswer, rejectAnswer) => {
      // Settled only once a file range is no longer being read into its buffer: a retry reuses it.
      let sending: Promise<void> = Promise.resolve();
      const resolve = (answer: S3Response) => void sending.finally(() => resolveAnswer(answer));
      const reject = (err: unknown) => void sending.finally(() => rejectAnswer(err));
      const request = (target.protocol === 'http:' ? http : https).request({
        method: req.method,
        hostname: target.hostname,
        port: target.port,
        path: qs === '' ? target.path : `${target.path}?${qs}`,
        headers: signed.headers,
        agent: this.agent,
        signal: req.signal,
      });
      const timedOut = () => request.destroy(Object.assign(new Error(`no answer from ${host}`), { code: 'ETIMEDOUT' }));
      request.setTimeout(CONNECT_TIMEOUT_MS, timedOut);
      request.once('socket', (socket) => {
        if (socket.connecting) socket.once('connect', () => request.setTimeout(IDLE_TIMEOUT_MS, timedOut));
        else request.setTimeout(IDLE_TIMEOUT_MS, timedOut);
      });
      request.once('error', reject);
      request.once('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve({ status, headers: res.headers, body: res });
        readAll(res).then((text) => reject(responseError(status, text)), reject);
      });
      if (body === undefined || Buffer.isBuffer(body)) request.end(body);
      else sending = sendRange(request, body).catch((err: unknown) => void request.destroy(err as Error));
    });
  }

  destroy(): void {
    this.agent.destroy();
  }
}

export async function readAll(stream: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
