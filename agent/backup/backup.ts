/**
 * `mysql-agent backup`: one backup now, into the object store.
 *
 * 1. Reach the store (bounded retry), take its lock (one writer per cluster prefix), and clean
 *    what a killed run left: unfinished multipart uploads, data objects without a manifest
 *    (while step 2 and 3 begin: a failed cleanup stops the stream).
 * 2. Pick the source as a clone does (BACKUP_SOURCE=auto: the clone's ranking of every ordinal's
 *    /status), GET its /backup; a busy or unreachable source passes to the next candidate.
 * 3. Stream: sidecar → [count, read chunk headers] → zstd → [SHA-256, count] → check → multipart
 *    upload; or, when the sidecar compressed (it is asked for zstd), sidecar → [SHA-256, count]
 *    → check → upload, with a zstd decompression beside it for the count and the chunk headers.
 *    The check stage fails the body at its end unless the sender's trailer said Success, the
 *    stream ended on a chunk boundary and its closing files went by: the upload is then aborted
 *    instead of completed. Every failure and SIGTERM aborts the upload.
 * 4. The manifest, written last, with the coordinates read from the stream's own info files
 *    (the same files a restore and a clone follow), then BACKUP_KEEP (planned from step 1's
 *    listing), then the lock is released.
 */
import { createHash } from '../core/builtins.js';
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { BackupError, CloneError, StoreError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { probePeers, statusOver } from '../cluster/peer-status.js';
import { agentTransport } from '../core/tls.js';
import { retry } from '../core/retry.js';
import { hostOf } from '../core/topology.js';
import { connect, refusal } from '../init/clone-attempt.js';
import { type Candidate, type SourceRanking, cloneFromFirst, label, rankCloneSources } from '../init/clone-source.js';
import { coordinatesOfFiles } from '../mysql/clone-info.js';
import { compressor, decompressor } from '../stream/compression.js';
import { type BackupId, type StoredBackup, backupDir, dataKey, groupKeys, manifestKey, newBackupId } from '../store/layout.js';
import { type HeldLock, LOCK_RENEW_MS, LOCK_STALE_MS, acquireLock } from '../store/lock.js';
import { type Manifest, formatJson } from '../store/manifest.js';
import { type RetentionPlan, planRetention } from '../store/retention.js';
import { MAX_PARTS, PART_BYTES, Store, where } from '../store/s3.js';
import { chunkCollector } from '../stream/meter.js';
import { CLOSING_FILES, STATUS_TRAILER, SUCCESS, estimatedBytesOf } from '../stream/protocol.js';
import { XbstreamReader } from '../stream/xbstream.js';
import type { BackupConfig } from './settings.js';

/** The candidates BACKUP_SOURCE names: the clone's ranking over ordinals 0..PEER_PROBE_COUNT, or one peer. */
export async function rankBackupSources(config: BackupConfig, log: Logger): Promise<SourceRanking> {
  const choice = config.source.choice;
  if (choice.kind === 'primary') return { candidates: [{ ordinal: 0, host: hostOf(config.peerHosts, 0), why: 'BACKUP_SOURCE=primary' }], skipped: [] };
  if (choice.kind === 'host') return { candidates: [{ ordinal: null, host: choice.host, why: 'BACKUP_SOURCE is a host' }], skipped: [] };
  const peers = Array.from({ length: config.source.probeCount + 1 }, (_, n) => ({ ordinal: n, host: hostOf(config.peerHosts, n) }));
  const reports = await probePeers(peers, config.backup.port, config.source.statusTimeoutMs, statusOver(agentTransport(config.tls)));
  // Ordinals past the end of the set do not answer: that is no news.
  const ranking = rankCloneSources(reports.filter((r) => r.status !== null || r.ordinal === 0), config.source.maxLagSeconds);
  for (const s of ranking.skipped) log.info({ phase: 'source', peer: s.host, peer_ordinal: s.ordinal, reason: s.reason }, 'backup source skipped');
  return ranking;
}

/** `key = value` lines of xtrabackup_info. */
export function infoValues(text: string | undefined): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    const m = /^\s*([a-z_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) values.set(m[1]!, m[2]!);
  }
  return values;
}

interface Streamed {
  readonly rawBytes: number;
  readonly storedBytes: number;
  readonly sha256: string;
  readonly kept: ReadonlyMap<string, string>;
}

/** The last stage before the upload: passes bytes, and at the end fails unless the stream is whole. */
function completenessGate(res: IncomingMessage, reader: XbstreamReader, peer: string, raw: { bytes: number }, done: (kept: ReadonlyMap<string, string>) => void): Transform {
  return new Transform({
    transform: (chunk, _enc, cb) => cb(null, chunk),
    flush: (cb) => {
      const status = res.trailers[STATUS_TRAILER];
      if (status !== SUCCESS) {
        return cb(
          new BackupError(
            status === undefined
              ? `the stream from ${peer} ended after ${raw.bytes} bytes without a status trailer: the sender stopped before finishing`
              : `the sender ${peer} reported the backup failed after ${raw.bytes} bytes (${status})`,
          ),
        );
      }
      try {
        const summary = reader.finish();
        const missing = CLOSING_FILES.filter((names) => !names.some((n) => summary.files.has(n)));
        if (missing.length > 0) return cb(new BackupError(`the stream from ${peer} is incomplete: no ${missing.map((m) => m.join(' or ')).join(', ')}`));
        done(summary.kept);
        cb();
      } catch (err) {
        cb(new BackupError(`the stream from ${peer} is not a complete xbstream: ${errorMessage(err)}`));
      }
    },
  });
}

/** Who compresses the stored object: the source (its reply is zstd), this process, or nobody (BACKUP_COMPRESSION=none). */
type CompressedBy = 'source' | 'agent' | null;

/**
 * The stage between the reply and the completeness gate, and where the tool's own bytes are seen
 * (`raw`: counted, parsed). A reply in zstd (the sender compressed, child to child) is stored as
 * it comes and decompressed beside the upload only to be read; a raw one is compressed here.
 */
function storedForm(res: IncomingMessage, by: CompressedBy, raw: (chunk: Buffer) => void): Transform {
  if (by === 'source') {
    const unzip = decompressor('zstd');
    unzip.on('data', raw);
    // Backpressure from both: the upload and the reading of the stream.
    const tee = new Transform({
      transform: (chunk: Buffer, _enc, cb) => (unzip.write(chunk) ? cb(null, chunk) : unzip.once('drain', () => cb(null, chunk))),
      flush: (cb) => void finished(unzip.end()).then(() => cb(), cb),
    });
    unzip.on('error', (err) => tee.destroy(new BackupError(`the zstd stream from the source does not decompress: ${errorMessage(err)}`)));
    return tee;
  }
  res.on('data', raw);
  return compressor(by === 'agent' ? 'zstd' : 'none');
}

/** Streams one source's backup into the data object; resolves once the upload is complete. */
async function streamToStore(config: BackupConfig, store: Store, key: string, candidate: Candidate, log: Logger, signal: AbortSignal): Promise<Streamed> {
  const peer = `${candidate.host}:${config.backup.port}`;
  const source = { host: candidate.host, port: config.backup.port, token: config.backup.token, transport: agentTransport(config.tls) };
  const connection = await connect(source, config.source.timeouts, signal, config.compression);
  const { res } = connection;
  if (res.statusCode !== 200) {
    res.resume();
    throw refusal(res.statusCode ?? 0, res.headers, peer);
  }
  const compressedBy: CompressedBy = config.compression === 'none' ? null : res.headers['content-encoding'] === 'zstd' ? 'source' : 'agent';
  log.info({ phase: 'stream', peer, peer_ordinal: candidate.ordinal, key, compressed_by: compressedBy }, 'source accepted, uploading');
  const raw = { bytes: 0 };
  const stored = { bytes: 0 };
  const hash = createHash('sha256');
  const reader = new XbstreamReader();
  const collect = chunkCollector();
  let parseError: unknown = null;
  connection.streaming(() => raw.bytes);
  const stage = storedForm(res, compressedBy, (chunk: Buffer) => {
    raw.bytes += chunk.length;
    collect(chunk.length);
    if (parseError === null) {
      try {
        reader.push(chunk);
      } catch (err) {
        parseError = err;
      }
    }
  });
  stage.on('data', (chunk: Buffer) => {
    stored.bytes += chunk.length;
    hash.update(chunk);
  });
  let kept: ReadonlyMap<string, string> = new Map();
  const gate = completenessGate(res, reader, peer, raw, (k) => (kept = k));
  const expected = estimatedBytesOf(res.headers);
  if (expected === null) log.warn({ phase: 'stream', peer, key }, `the source sent no size estimate: parts of ${PART_BYTES / 2 ** 20} MiB limit this backup to ${Math.floor((MAX_PARTS * PART_BYTES) / 2 ** 30)} GiB`);
  const upload = store.upload(key, gate, signal, expected);
  // A failed upload stops reading: end the stream too, so the sidecar's tool is killed at once.
  upload.catch((err: unknown) => gate.destroy(err instanceof Error ? err : new Error(String(err))));
  const flowing = pipeline(res, stage, gate);
  const [flow, up] = await Promise.allSettled([flowing, upload]);
  if (flow.status === 'rejected' || up.status === 'rejected') {
    if (signal.aborted) throw signal.reason;
    const expired = connection.expired();
    if (expired) throw expired;
    const errors = [flow, up].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    // The stream's verdict first (not whole, tool failed), then the store's, then the pipe's.
    const why = errors.find((e) => e instanceof BackupError) ?? errors.find((e) => e instanceof StoreError) ?? errors[0];
    if (why instanceof BackupError || why instanceof StoreError) throw why;
    throw new BackupError(`streaming from ${peer} into ${key} failed after ${raw.bytes} bytes: ${errorMessage(why)}`, { cause: why });
  }
  if (parseError !== null) throw new BackupError(`the stream from ${peer} is not a readable xbstream: ${errorMessage(parseError)}`);
  const size = await store.size(key);
  if (size !== stored.bytes) throw new BackupError(`the store holds ${size} bytes at ${key}, but ${stored.bytes} were sent`);
  return { rawBytes: raw.bytes, storedBytes: stored.bytes, sha256: hash.digest('hex'), kept };
}

function manifestOf(id: BackupId, startedAt: Date, candidate: Candidate, config: BackupConfig, key: string, s: Streamed): Manifest {
  const info = coordinatesOfFiles(s.kept);
  if (info === null) throw new BackupError('the stream carries neither a binlog_info nor a slave_info file: nothing to replicate from, so it is no usable backup');
  const values = infoValues(s.kept.get('xtrabackup_info') ?? s.kept.get('mariadb_backup_info'));
  const version = values.get('server_version') ?? null;
  const c = info.coordinates;
  return {
    format: 1,
    id,
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    source: { host: candidate.host, pod: null, ordinal: candidate.ordinal, role: candidate.ordinal === null ? null : candidate.ordinal === 0 ? 'primary' : 'replica', choice: config.source.choice.kind, why: candidate.why },
    server: { flavor: version === null ? null : /mariadb/i.test(version) ? 'mariadb' : 'mysql', version, tool_version: values.get('tool_version') ?? null },
    data: { key, compression: config.compression, raw_bytes: s.rawBytes, stored_bytes: s.storedBytes, sha256: s.sha256 },
    coordinates: { from: c.from, binlog_file: c.position?.file ?? null, binlog_pos: c.position?.pos ?? null, gtid: c.gtid },
    info_files: Object.fromEntries(s.kept),
  };
}

/** Deletes the backups `plan` names, manifest first, so a half-deleted backup is no backup. */
async function deleteBackups(store: Store, plan: RetentionPlan, log: Logger): Promise<void> {
  for (const b of [...plan.leftovers, ...plan.expired]) {
    const ordered = [...b.keys].sort((a, z) => Number(z.endsWith('/manifest.json')) - Number(a.endsWith('/manifest.json')));
    for (const key of ordered) await store.delete(key);
    log.info({ phase: 'retention', backup_id: b.id, complete: b.hasManifest }, b.hasManifest ? 'deleted a backup beyond BACKUP_KEEP' : "deleted a killed run's leftover");
  }
}

/**
 * What a killed run left: its unfinished multipart uploads and its data objects without a
 * manifest, all but this run's own (`id`, whose upload may begin meanwhile). Resolves with the
 * complete backups there are: under the lock nothing else changes them, so the retention after
 * this run's manifest is planned from this one listing.
 */
async function cleanLeftovers(store: Store, id: BackupId, log: Logger): Promise<StoredBackup[]> {
  const aborted = await store.abortLeftoverUploads(undefined, backupDir(store.config.prefix, id));
  if (aborted.length > 0) log.warn({ phase: 'retention', keys: aborted }, 'aborted unfinished uploads of a killed run');
  const listed = await store.list();
  await deleteBackups(store, planRetention(listed, Number.MAX_SAFE_INTEGER, [id]), log);
  return listed.filter((b) => b.hasManifest && b.id !== id);
}

/** How long a run keeps trying to release its lock (the store may be back in a moment) before it leaves it to go stale. */
const RELEASE_DEADLINE_MS = 30_000;

async function releaseLock(lock: HeldLock, log: Logger): Promise<void> {
  await retry(() => lock.release(), {
    policy: { deadlineMs: RELEASE_DEADLINE_MS, initialDelayMs: 1000, maxDelayMs: 5000 },
    classify: (err) => ({ retry: err instanceof StoreError && err.retryable }),
    onRetry: (err, attempt, delayMs) => log.warn({ phase: 'lock', attempt, retry_in_ms: delayMs, err: errorMessage(err) }, 'could not release the lock yet, retrying'),
    // Released even after SIGTERM: the next run must not wait for it to go stale.
    signal: new AbortController().signal,
  }).catch((err: unknown) =>
    log.warn({ phase: 'lock', err: errorMessage(err) }, `could not release the lock; the next run takes it over once it is stale (${LOCK_STALE_MS / 1000} s)`),
  );
}

export async function runBackup(config: BackupConfig, log: Logger, signal: AbortSignal, out: NodeJS.WritableStream): Promise<void> {
  const store = new Store(config.store);
  const started = new Date();
  const id = newBackupId(started);
  const blog = log.child({ backup_id: id });
  const local = new AbortController();
  const onAbort = () => local.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await store.reach(local.signal);
    const lock = await acquireLock(store, id, config.podName);
    if (lock.replaced) blog.warn({ phase: 'lock', stale: lock.replaced }, 'took over the lock of a run that stopped renewing it');
    const renewal = setInterval(() => lock.renew().catch((err: unknown) => local.abort(err)), LOCK_RENEW_MS);
    // The leftovers are cleaned while the source starts its backup: both take a while, neither needs the other.
    const cleaning = cleanLeftovers(store, id, blog);
    cleaning.catch((err: unknown) => local.abort(err));
    try {
      const key = dataKey(config.store.prefix, id, config.compression);
      const streaming = (async () => {
        const ranking = await rankBackupSources(config, blog);
        blog.info({ phase: 'source', candidates: ranking.candidates.map((c) => ({ peer: c.host, peer_ordinal: c.ordinal, why: c.why })) }, ranking.candidates.length > 0 ? `backup source candidates: ${ranking.candidates.map(label).join(', ')}` : 'no backup source candidate');
        return cloneFromFirst(
          ranking,
          (c) => streamToStore(config, store, key, c, blog, local.signal),
          (c, err, remaining) => blog.warn({ phase: 'source', peer: c.host, peer_ordinal: c.ordinal, remaining, err: errorMessage(err) }, remaining > 0 ? 'backup source failed, trying the next' : 'backup source failed'),
        ).catch((err: unknown) => {
          throw err instanceof CloneError ? new BackupError(`no source could be backed up: ${err.message}`, { cause: err }) : err;
        });
      })();
      // Both settle before anything else happens: no delete runs on after the lock is released.
      const [cleaned, streamed] = await Promise.allSettled([cleaning, streaming]);
      if (cleaned.status === 'rejected') throw cleaned.reason;
      if (streamed.status === 'rejected') throw streamed.reason;
      const { result, candidate } = streamed.value;
      const manifest = manifestOf(id, started, candidate, config, key, result);
      const manifestAt = manifestKey(config.store.prefix, id);
      await store.putText(manifestAt, formatJson(manifest));
      const seconds = (Date.now() - started.getTime()) / 1000;
      blog.info(
        { phase: 'done', peer: candidate.host, bytes: result.rawBytes, stored_bytes: result.storedBytes, sha256: result.sha256, duration_ms: Date.now() - started.getTime(), rate_mb_s: +(result.rawBytes / 1e6 / seconds).toFixed(1), coordinates: manifest.coordinates },
        `backup ${id} complete in ${where(config.store)}`,
      );
      out.write(`${id}\n`);
      const now = groupKeys(config.store.prefix, [...cleaned.value.flatMap((b) => b.keys), key, manifestAt]);
      await deleteBackups(store, planRetention(now, config.keep, [id]), blog);
    } finally {
      clearInterval(renewal);
      await releaseLock(lock, blog);
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (local.signal.aborted && !signal.aborted && local.signal.reason instanceof Error) log.error({ err: local.signal.reason.message }, 'backup stopped');
    store.destroy();
  }
}
