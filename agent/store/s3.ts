/**
 * The store's edge: the only file that talks to it, through S3Http (signed requests, no SDK
 * client). Path-style addressing where S3_ENDPOINT is set. Every failure leaves here as a
 * StoreError with one line naming the endpoint, bucket or setting, never a secret (the store's
 * own text is not passed on).
 */
import { open } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { StoreError } from '../core/errors.js';
import { type Clock, RetryExhausted, retry } from '../core/retry.js';
import { type StoredBackup, backupsPrefix, groupKeys } from './layout.js';
import { type Credentials, type FileRange, S3Http, type S3Request, S3ResponseError, TRANSIENT, many, parseXmlBody } from './s3-http.js';
import type { StoreConfig } from './settings.js';

/**
 * Multipart: 5 MiB parts (S3's smallest), 2 in flight: ~16 MB of buffers at most (one more is
 * being filled), ~70 MB/s to a store that takes a part in 150 ms, about what the sender's one
 * zstd thread makes (43–71 MB/s of compressed stream in the benches). 8 MiB parts kept the
 * backup process 6 MB over its 100 MB, and with 4 or 3 in flight its peak held every buffer
 * whenever the store slowed (106 and 104 MB, measured).
 */
export const PART_BYTES = 5 * 1024 * 1024;
export const PARTS_IN_FLIGHT = 2;
/** A file's parts (uploadFile, the archiver's): sent from the file, so their size costs no memory; 1,000 parts for an 8 GB file. */
export const FILE_PART_BYTES = 8 * 1024 * 1024;
/** uploadFile's one buffer: what it reads from the file at a time. */
const FILE_READ_BYTES = 256 * 1024;
/** S3's limit of parts in one multipart upload: at PART_BYTES, 48 GiB. */
export const MAX_PARTS = 10_000;
const MiB = 1024 * 1024;

/**
 * The parts of a stream upload of about `expectedBytes` (the sender's estimate of the raw stream;
 * the stored object, compressed or not, is not larger by much): PART_BYTES up to 48 GiB, beyond
 * that whole MiB large enough for 10,000 parts with a quarter to spare for a short estimate (the
 * buffers, PARTS_IN_FLIGHT + 1 of them, grow with it: 3 × 12 MiB for a 100 GB stream).
 */
export function partPlan(expectedBytes: number | null): { readonly partBytes: number; readonly inFlight: number } {
  const needed = expectedBytes === null ? 0 : Math.ceil((expectedBytes * 1.25) / MAX_PARTS / MiB) * MiB;
  return { partBytes: Math.max(PART_BYTES, needed), inFlight: PARTS_IN_FLIGHT };
}
/** How long the store may stay unreachable at start before a command gives up. */
const REACH_DEADLINE_MS = 20_000;

export const where = (config: StoreConfig) => `s3://${config.bucket}/${config.prefix}${config.endpoint ? ` at ${config.endpoint}` : ''}`;

/** A failure as one line for an operator; `doing` says what was being done. */
export function storeError(err: unknown, config: StoreConfig, doing: string): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as { name?: string; code?: string; cause?: { code?: string } };
  const status = err instanceof S3ResponseError ? err.status : undefined;
  const name = err instanceof S3ResponseError ? err.code : (e.name ?? '');
  const code = e.code ?? e.cause?.code ?? name;
  const at = config.endpoint ?? 'AWS S3';
  const fatal = (m: string) => new StoreError(`${doing}: ${m}`, false, { cause: err });
  switch (name) {
    case 'NoSuchBucket':
      return fatal(`bucket "${config.bucket}" does not exist at ${at}: create it, or fix the bucket in BACKUP_STORE_URL`);
    case 'InvalidAccessKeyId':
      return fatal(`${at} does not know the access key: check AWS_ACCESS_KEY_ID (and the Secret it comes from)`);
    case 'SignatureDoesNotMatch':
      return fatal(`${at} refused the request signature: check AWS_SECRET_ACCESS_KEY (and the Secret it comes from)`);
    case 'AccessDenied':
    case 'Forbidden':
      return fatal(`access to bucket "${config.bucket}" at ${at} denied: the credentials (AWS_ACCESS_KEY_ID) lack permission on it`);
    case 'CredentialsProviderError':
      return fatal('no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a web identity) for the SDK');
  }
  if (status === 404 && doing.startsWith('checking')) {
    return fatal(`bucket "${config.bucket}" does not exist at ${at}: create it, or fix the bucket in BACKUP_STORE_URL`);
  }
  if (status === 403) return fatal(`${at} refused the credentials (HTTP 403): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
  if (TRANSIENT.has(code) || (status !== undefined && status >= 500)) {
    return new StoreError(`${doing}: store unreachable at ${at} (${status ?? code})`, true, { cause: err });
  }
  return fatal(`${at} answered ${name || code || 'an error'}${status ? ` (HTTP ${status})` : ''}`);
}

const statusOf = (err: unknown) => (err instanceof S3ResponseError ? err.status : undefined);
const isNotFound = (err: unknown) => statusOf(err) === 404;

const lengthOf = (headers: IncomingHttpHeaders): number | null => {
  const length = Number(headers['content-length']);
  return Number.isFinite(length) ? length : null;
};

const etagOf = (headers: IncomingHttpHeaders): string | null => (typeof headers.etag === 'string' && headers.etag !== '' ? headers.etag : null);

/** What putText wrote: the ETag names that version of the object. */
export interface Written {
  readonly etag: string | null;
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One cluster's corner of one bucket. */
export class Store {
  readonly s3: S3Http;

  constructor(
    readonly config: StoreConfig,
    options: { credentials?: Credentials; clock?: Clock } = {},
  ) {
    this.s3 = new S3Http(config, options.credentials, options.clock);
  }

  private async call<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw storeError(err, this.config, doing);
    }
  }

  /** A request whose answer is read whole (small: XML, JSON, nothing). */
  private async text(doing: string, req: S3Request): Promise<string> {
    return this.call(doing, async () => (await this.s3.text(req)).text);
  }

  private async xml(doing: string, req: S3Request): Promise<Record<string, unknown>> {
    const text = await this.text(doing, req);
    try {
      return parseXmlBody(text);
    } catch {
      throw new StoreError(`${doing}: ${this.config.endpoint ?? 'AWS S3'} answered what is not S3's XML`, true);
    }
  }

  /**
   * Checks bucket and credentials with a one-key listing under the prefix (a GET: unlike HEAD, its
   * error body names the cause), retrying an unreachable store until a short deadline.
   */
  async reach(signal: AbortSignal, clock?: Clock): Promise<void> {
    const probe = () =>
      this.text(`checking ${where(this.config)}`, { method: 'GET', key: null, query: { 'list-type': '2', prefix: backupsPrefix(this.config.prefix), 'max-keys': '1' }, signal });
    await retry(probe, {
      policy: { deadlineMs: REACH_DEADLINE_MS, initialDelayMs: 500, maxDelayMs: 5_000 },
      classify: (err) => ({ retry: err instanceof StoreError && err.retryable }),
      onRetry: () => {},
      signal,
      clock,
    }).catch((err: unknown) => {
      if (err instanceof RetryExhausted && err.last instanceof StoreError) {
        throw new StoreError(`${err.last.message}; gave up after ${REACH_DEADLINE_MS / 1000} s`, false, { cause: err.last });
      }
      throw err;
    });
  }

  /**
   * `reach`, with the caller's first reads (`first`: reads only) sent beside its probe: on a
   * reachable store a round-trip less at start (RGW holds each small answer ~40 ms, README). The
   * probe's error is the one reported; reads that failed only because the store was not answering
   * yet run again, any other failure of theirs is final.
   */
  async reachWith<T>(signal: AbortSignal, first: () => Promise<T>): Promise<T> {
    const early = Promise.resolve()
      .then(first)
      .then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
    await this.reach(signal);
    const settled = await early;
    if ('value' in settled) return settled.value;
    if (settled.error instanceof StoreError && settled.error.retryable) return first();
    throw settled.error;
  }

  /** Every backup id under the prefix with what it holds, newest first. */
  async list(): Promise<StoredBackup[]> {
    return groupKeys(this.config.prefix, await this.listKeys(backupsPrefix(this.config.prefix), 'listing backups'));
  }

  /** Every key under `under` (a full key prefix), in the store's order. */
  async listKeys(under: string, doing = `listing ${under}`): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const query: Record<string, string> = { 'list-type': '2', prefix: under, ...(token === undefined ? {} : { 'continuation-token': token }) };
      const page = (await this.xml(doing, { method: 'GET', key: null, query })).ListBucketResult as
        | { Contents?: { Key?: string } | { Key?: string }[]; IsTruncated?: string; NextContinuationToken?: string }
        | undefined;
      for (const o of many(page?.Contents)) if (typeof o.Key === 'string') keys.push(o.Key);
      token = page?.IsTruncated === 'true' ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  async getText(key: string): Promise<string | null> {
    try {
      return (await this.s3.text({ method: 'GET', key })).text;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw storeError(err, this.config, `reading ${key}`);
    }
  }

  /**
   * Writes a small object and resolves with the ETag the store gave it; with `onlyIfAbsent`,
   * resolves null when the object already exists (If-None-Match).
   */
  async putText(key: string, body: string, options: { onlyIfAbsent?: boolean } = {}): Promise<Written | null> {
    const headers = { 'content-type': 'application/json', ...(options.onlyIfAbsent ? { 'if-none-match': '*' } : {}) };
    try {
      const res = await this.s3.text({ method: 'PUT', key, headers, body: Buffer.from(body, 'utf8') });
      return { etag: etagOf(res.headers) };
    } catch (err) {
      if (options.onlyIfAbsent && statusOf(err) === 412) return null;
      throw storeError(err, this.config, `writing ${key}`);
    }
  }

  /** The object's headers (a HEAD, whose answer has no body to wait for), null when there is no object. */
  private async head(key: string): Promise<IncomingHttpHeaders | null> {
    try {
      return (await this.s3.text({ method: 'HEAD', key })).headers;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw storeError(err, this.config, `reading ${key}`);
    }
  }

  /** The object's ETag, null when there is no object or it has none. */
  async etag(key: string): Promise<string | null> {
    const headers = await this.head(key);
    return headers === null ? null : etagOf(headers);
  }

  async delete(key: string): Promise<void> {
    await this.text(`deleting ${key}`, { method: 'DELETE', key });
  }

  private async putObject(key: string, body: Buffer | FileRange, signal: AbortSignal): Promise<void> {
    await this.text(`uploading ${key}`, { method: 'PUT', key, headers: { 'content-type': 'application/octet-stream' }, body, signal });
  }

  private async createUpload(key: string, signal: AbortSignal): Promise<string> {
    const res = (await this.xml(`uploading ${key}`, { method: 'POST', key, query: { uploads: '' }, headers: { 'content-type': 'application/octet-stream' }, signal }))
      .InitiateMultipartUploadResult as { UploadId?: unknown } | undefined;
    if (typeof res?.UploadId !== 'string') throw new StoreError(`uploading ${key}: the store started a multipart upload without an id`, true);
    return res.UploadId;
  }

  private async uploadPart(key: string, uploadId: string, n: number, body: Buffer | FileRange, signal: AbortSignal): Promise<string> {
    const res = await this.call(`uploading ${key}`, () => this.s3.text({ method: 'PUT', key, query: { partNumber: String(n), uploadId }, body, signal }));
    const etag = res.headers.etag;
    if (typeof etag !== 'string') throw new StoreError(`uploading ${key}: the store answered part ${n} without an ETag`, true);
    return etag;
  }

  private async completeUpload(key: string, uploadId: string, etags: readonly string[], signal: AbortSignal): Promise<void> {
    const parts = etags.map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${escapeXml(etag)}</ETag></Part>`).join('');
    const body = Buffer.from(`<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${parts}</CompleteMultipartUpload>`, 'utf8');
    // S3 may answer 200 and still fail the completion, in the body.
    const answer = await this.xml(`uploading ${key}`, { method: 'POST', key, query: { uploadId }, headers: { 'content-type': 'application/xml' }, body, signal });
    const failed = answer.Error as { Code?: unknown } | undefined;
    if (failed !== undefined) throw storeError(new S3ResponseError(500, String(failed.Code ?? 'InternalError')), this.config, `uploading ${key}`);
  }

  private async abortUpload(key: string, uploadId: string): Promise<void> {
    await this.s3.text({ method: 'DELETE', key, query: { uploadId } });
  }

  /**
   * Uploads a stream as a multipart upload (a single PUT when it is under one part), its parts
   * sized for `expectedBytes` (partPlan; without it, 48 GiB at most), up to `inFlight` of them at
   * once from as many reused buffers and one being filled. Any failure of the body, the store or
   * `signal` aborts the upload: nothing of it stays visible.
   */
  async upload(key: string, body: Readable, signal: AbortSignal, expectedBytes: number | null = null): Promise<void> {
    const { partBytes, inFlight } = partPlan(expectedBytes);
    const stop = new AbortController();
    const requests = AbortSignal.any([signal, stop.signal]);
    const free: Buffer[] = [];
    const etags: string[] = [];
    const running = new Set<Promise<void>>();
    let failure: { err: unknown } | null = null;
    let uploadId: string | null = null;
    const send = (id: string, n: number, part: Buffer, buffer: Buffer) => {
      const sending: Promise<void> = this.uploadPart(key, id, n, part, requests).then(
        (etag) => void ((etags[n - 1] = etag), free.push(buffer)),
        (err: unknown) => void ((failure ??= { err }), stop.abort()),
      );
      running.add(sending);
      void sending.finally(() => running.delete(sending));
    };
    try {
      let buffer: Buffer = Buffer.allocUnsafeSlow(partBytes);
      let filled = 0;
      let parts = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        for (let at = 0; at < chunk.length; ) {
          const n = chunk.copy(buffer, filled, at, Math.min(chunk.length, at + partBytes - filled));
          filled += n;
          at += n;
          if (filled < partBytes) continue;
          uploadId ??= await this.createUpload(key, requests);
          while (running.size >= inFlight && failure === null) await Promise.race(running);
          if (failure !== null) throw (failure as { err: unknown }).err;
          send(uploadId, ++parts, buffer, buffer);
          buffer = free.pop() ?? Buffer.allocUnsafeSlow(partBytes);
          filled = 0;
        }
        if (failure !== null) throw (failure as { err: unknown }).err;
      }
      if (uploadId === null) return await this.putObject(key, buffer.subarray(0, filled), requests);
      if (filled > 0) send(uploadId, ++parts, buffer.subarray(0, filled), buffer);
      while (running.size > 0) await Promise.race(running);
      if (failure !== null) throw (failure as { err: unknown }).err;
      await this.completeUpload(key, uploadId, etags, requests);
    } catch (err) {
      stop.abort();
      await Promise.allSettled(running);
      if (uploadId !== null) await this.abortUpload(key, uploadId).catch(() => {});
      if (signal.aborted) throw signal.reason;
      // The body's own failure (a stream that is not whole) is the reason; anything else is the store's.
      const bodyErr = body.errored;
      throw bodyErr && bodyErr.name !== 'AbortError' ? bodyErr : storeError(err, this.config, `uploading ${key}`);
    }
  }

  /**
   * Uploads a file from disk in parts of FILE_PART_BYTES (a single PUT when it fits in one), each
   * read from the file twice through one small buffer, once for the signature's SHA-256 and once
   * to send: that much memory whatever the file's or the part's size. A part buffer per file (5
   * MiB) raised the archiving sidecar's peak RSS by as much at every rotation; a stream through
   * the uploader left each part's 64 KB chunks to the collector (+77 MB for a 100 MB binary log).
   * Any failure or `signal` aborts the multipart upload: nothing of it stays visible.
   */
  async uploadFile(key: string, path: string, signal: AbortSignal): Promise<void> {
    const file = await open(path, 'r');
    try {
      const { size } = await file.stat();
      const buffer = Buffer.allocUnsafe(FILE_READ_BYTES);
      const range = (position: number): FileRange => ({ file, position, length: Math.min(FILE_PART_BYTES, size - position), buffer });
      if (size <= FILE_PART_BYTES) return await this.putObject(key, range(0), signal);
      const uploadId = await this.createUpload(key, signal);
      try {
        const etags: string[] = [];
        for (let position = 0; position < size; position += FILE_PART_BYTES) etags.push(await this.uploadPart(key, uploadId, etags.length + 1, range(position), signal));
        await this.completeUpload(key, uploadId, etags, signal);
      } catch (err) {
        await this.abortUpload(key, uploadId).catch(() => {});
        throw err;
      }
    } catch (err) {
      throw signal.aborted ? signal.reason : err;
    } finally {
      await file.close();
    }
  }

  /** The stored object as a stream, with its length. */
  async download(key: string, signal: AbortSignal): Promise<{ body: Readable; length: number | null }> {
    const res = await this.call(`reading ${key}`, () => this.s3.send({ method: 'GET', key, signal }));
    return { body: res.body, length: lengthOf(res.headers) };
  }

  async size(key: string): Promise<number | null> {
    const headers = await this.head(key);
    return headers === null ? null : lengthOf(headers);
  }

  /** Aborts every multipart upload left under `under` (a killed run's; default the backups prefix) but those under `spare`; returns their keys. */
  async abortLeftoverUploads(under = backupsPrefix(this.config.prefix), spare: string | null = null): Promise<string[]> {
    const aborted: string[] = [];
    const res = (await this.xml('listing unfinished uploads', { method: 'GET', key: null, query: { uploads: '', prefix: under } })).ListMultipartUploadsResult as
      | { Upload?: { Key?: unknown; UploadId?: unknown } | { Key?: unknown; UploadId?: unknown }[] }
      | undefined;
    for (const u of many(res?.Upload)) {
      if (typeof u.Key !== 'string' || typeof u.UploadId !== 'string' || (spare !== null && u.Key.startsWith(spare))) continue;
      const { Key, UploadId } = u as { Key: string; UploadId: string };
      await this.call(`aborting the upload of ${Key}`, () => this.abortUpload(Key, UploadId));
      aborted.push(Key);
    }
    return aborted;
  }

  destroy(): void {
    this.s3.destroy();
  }
}
