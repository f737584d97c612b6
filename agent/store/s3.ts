/**
 * The S3 client edge: the only file that talks to the store. Path-style addressing where
 * S3_ENDPOINT is set, and checksums only where the API requires them: Ceph RGW 16 refuses a
 * streamed PutObject with the SDK's default trailing checksum ("MissingContentLength"). Every
 * SDK failure leaves here as a StoreError with one line naming the endpoint, bucket or setting,
 * never a secret (the SDK's own text is not passed on).
 */
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { StoreError } from '../core/errors.js';
import { type Clock, RetryExhausted, retry } from '../core/retry.js';
import { type StoredBackup, backupsPrefix, groupKeys } from './layout.js';
import type { StoreConfig } from './settings.js';

/** Multipart: 8 MiB parts, 4 in flight: ~40 MB of buffers at most, the store's speed on two cores. */
export const PART_BYTES = 8 * 1024 * 1024;
export const PARTS_IN_FLIGHT = 4;
/** S3's limit of parts in one multipart upload: at PART_BYTES, 78 GiB. */
export const MAX_PARTS = 10_000;
const MiB = 1024 * 1024;

/**
 * The parts of a stream upload of about `expectedBytes` (the sender's estimate of the raw stream;
 * the stored object, compressed or not, is not larger by much): PART_BYTES up to 78 GiB, beyond
 * that whole MiB large enough for 10,000 parts with a quarter to spare for a short estimate, and
 * fewer in flight (never under 2) so the buffers stay near PARTS_IN_FLIGHT × PART_BYTES.
 */
export function partPlan(expectedBytes: number | null): { readonly partBytes: number; readonly inFlight: number } {
  const needed = expectedBytes === null ? 0 : Math.ceil((expectedBytes * 1.25) / MAX_PARTS / MiB) * MiB;
  const partBytes = Math.max(PART_BYTES, needed);
  return { partBytes, inFlight: Math.max(2, Math.floor((PARTS_IN_FLIGHT * PART_BYTES) / partBytes)) };
}
/** How long the store may stay unreachable at start before a command gives up. */
const REACH_DEADLINE_MS = 20_000;
const TRANSIENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'TimeoutError']);

export const where = (config: StoreConfig) => `s3://${config.bucket}/${config.prefix}${config.endpoint ? ` at ${config.endpoint}` : ''}`;

export function createS3Client(config: StoreConfig): S3Client {
  return new S3Client({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    forcePathStyle: config.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000 },
  });
}

/** The SDK's failure as one line for an operator; `doing` says what was being done. */
export function storeError(err: unknown, config: StoreConfig, doing: string): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; cause?: { code?: string } };
  const name = e.name ?? '';
  const code = e.code ?? e.cause?.code ?? name;
  const status = e.$metadata?.httpStatusCode;
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

const isPreconditionFailed = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412;
const isNotFound = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
};

/** One cluster's corner of one bucket. */
export class Store {
  constructor(
    readonly config: StoreConfig,
    readonly s3: S3Client = createS3Client(config),
  ) {}

  private async call<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw storeError(err, this.config, doing);
    }
  }

  /**
   * Checks bucket and credentials with a one-key listing under the prefix (a GET: unlike HEAD, its
   * error body names the cause), retrying an unreachable store until a short deadline.
   */
  async reach(signal: AbortSignal, clock?: Clock): Promise<void> {
    const probe = () =>
      this.call(`checking ${where(this.config)}`, () =>
        this.s3.send(new ListObjectsV2Command({ Bucket: this.config.bucket, Prefix: backupsPrefix(this.config.prefix), MaxKeys: 1 }), { abortSignal: signal }),
      );
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

  /** Every backup id under the prefix with what it holds, newest first. */
  async list(): Promise<StoredBackup[]> {
    return groupKeys(this.config.prefix, await this.listKeys(backupsPrefix(this.config.prefix), 'listing backups'));
  }

  /** Every key under `under` (a full key prefix), in the store's order. */
  async listKeys(under: string, doing = `listing ${under}`): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.call(doing, () => this.s3.send(new ListObjectsV2Command({ Bucket: this.config.bucket, Prefix: under, ContinuationToken: token })));
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  async getText(key: string): Promise<string | null> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: key }));
      return await res.Body!.transformToString('utf8');
    } catch (err) {
      if (isNotFound(err)) return null;
      throw storeError(err, this.config, `reading ${key}`);
    }
  }

  /** Writes a small object; with `onlyIfAbsent`, resolves false when it already exists (If-None-Match). */
  async putText(key: string, body: string, options: { onlyIfAbsent?: boolean } = {}): Promise<boolean> {
    try {
      await this.s3.send(
        new PutObjectCommand({ Bucket: this.config.bucket, Key: key, Body: body, ContentType: 'application/json', ...(options.onlyIfAbsent ? { IfNoneMatch: '*' } : {}) }),
      );
      return true;
    } catch (err) {
      if (options.onlyIfAbsent && isPreconditionFailed(err)) return false;
      throw storeError(err, this.config, `writing ${key}`);
    }
  }

  async delete(key: string): Promise<void> {
    await this.call(`deleting ${key}`, () => this.s3.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key: key })));
  }

  /**
   * Uploads a stream as a multipart upload (a single PUT when it is under one part), its parts
   * sized for `expectedBytes` (partPlan; without it, 78 GiB at most). Any failure
   * of the body, the store or `signal` aborts the upload: nothing of it stays visible.
   */
  async upload(key: string, body: Readable, signal: AbortSignal, expectedBytes: number | null = null): Promise<void> {
    const { partBytes, inFlight } = partPlan(expectedBytes);
    const upload = new Upload({
      client: this.s3,
      params: { Bucket: this.config.bucket, Key: key, Body: body, ContentType: 'application/octet-stream' },
      partSize: partBytes,
      queueSize: inFlight,
      leavePartsOnError: false,
    });
    const onAbort = () => void upload.abort().catch(() => {});
    signal.addEventListener('abort', onAbort, { once: true });
    // A body that fails must fail the upload, not leave it waiting for more bytes. An AbortError
    // is the uploader's own doing (a part failed, it stopped reading): its reason follows from
    // done(), which is given a while to say it.
    const stopOnBodyError = (err: Error) => {
      if (err.name !== 'AbortError') void upload.abort().catch(() => {});
      else setTimeout(() => void upload.abort().catch(() => {}), 30_000).unref();
    };
    body.once('error', stopOnBodyError);
    try {
      await upload.done();
    } catch (err) {
      await upload.abort().catch(() => {});
      if (signal.aborted) throw signal.reason;
      // The body's own failure (a stream that is not whole) is the reason; anything else is the store's.
      const bodyErr = body.errored;
      throw bodyErr && bodyErr.name !== 'AbortError' ? bodyErr : storeError(err, this.config, `uploading ${key}`);
    } finally {
      signal.removeEventListener('abort', onAbort);
      body.removeListener('error', stopOnBodyError);
    }
  }

  /**
   * Uploads a file from disk through one part buffer, reused for every part (a single PUT when
   * the file fits in one): PART_BYTES of memory whatever the file's size, and no garbage. A stream
   * through the uploader instead left each part's 64 KB chunks and their 8 MiB concatenation to
   * the collector: a 100 MB binary log raised the sidecar's peak RSS by 77 MB. Any failure or
   * `signal` aborts the multipart upload: nothing of it stays visible.
   */
  async uploadFile(key: string, path: string, signal: AbortSignal): Promise<void> {
    const { bucket: Bucket } = this.config;
    const doing = `uploading ${key}`;
    const file = await open(path, 'r');
    const part = Buffer.allocUnsafeSlow(PART_BYTES);
    const readPart = async (position: number): Promise<Buffer> => {
      let filled = 0;
      for (let n = -1; n !== 0 && filled < PART_BYTES; filled += n) n = (await file.read(part, filled, PART_BYTES - filled, position + filled)).bytesRead;
      return part.subarray(0, filled);
    };
    try {
      let body = await readPart(0);
      if (body.length < PART_BYTES) {
        await this.call(doing, () => this.s3.send(new PutObjectCommand({ Bucket, Key: key, Body: body, ContentType: 'application/octet-stream' }), { abortSignal: signal }));
        return;
      }
      const { UploadId } = await this.call(doing, () => this.s3.send(new CreateMultipartUploadCommand({ Bucket, Key: key, ContentType: 'application/octet-stream' }), { abortSignal: signal }));
      try {
        const parts: { ETag: string | undefined; PartNumber: number }[] = [];
        for (let position = 0; body.length > 0; position += PART_BYTES, body = await readPart(position)) {
          const PartNumber = parts.length + 1;
          const sent = body;
          const { ETag } = await this.call(doing, () => this.s3.send(new UploadPartCommand({ Bucket, Key: key, UploadId, PartNumber, Body: sent, ContentLength: sent.length }), { abortSignal: signal }));
          parts.push({ ETag, PartNumber });
        }
        await this.call(doing, () => this.s3.send(new CompleteMultipartUploadCommand({ Bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }), { abortSignal: signal }));
      } catch (err) {
        await this.s3.send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId })).catch(() => {});
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
    const res = await this.call(`reading ${key}`, () => this.s3.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: key }), { abortSignal: signal }));
    return { body: res.Body as Readable, length: res.ContentLength ?? null };
  }

  async size(key: string): Promise<number | null> {
    try {
      return (await this.s3.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: key }))).ContentLength ?? null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw storeError(err, this.config, `reading ${key}`);
    }
  }

  /** Aborts every multipart upload left under `under` (a killed run's; default the backups prefix); returns their keys. */
  async abortLeftoverUploads(under = backupsPrefix(this.config.prefix)): Promise<string[]> {
    const aborted: string[] = [];
    const res = await this.call('listing unfinished uploads', () => this.s3.send(new ListMultipartUploadsCommand({ Bucket: this.config.bucket, Prefix: under })));
    for (const u of res.Uploads ?? []) {
      if (!u.Key || !u.UploadId) continue;
      await this.call(`aborting the upload of ${u.Key}`, () =>
        this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.config.bucket, Key: u.Key, UploadId: u.UploadId })),
      );
      aborted.push(u.Key);
    }
    return aborted;
  }

  destroy(): void {
    this.s3.destroy();
  }
}

