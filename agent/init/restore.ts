/**
 * Restoring a backup from the object store into an empty datadir: ordinal 0 with RESTORE_FROM
 * (where the empty-primary rule would start a new cluster), and a replica with
 * CLONE_SOURCE=backup. The object is streamed, hashed and extracted into the same staging
 * directory a clone uses; a SHA-256 or size that differs from the manifest, or a stream that
 * does not decompress or extract, refuses before prepare and removes the staging directory, so
 * DATA_DIR is as before. Then the same prepare, records, flush and `mysql/`-last move as a clone.
 */
import { createHash } from '../core/builtins.js';
import { pipeline } from 'node:stream/promises';
import { BackupError, StoreError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { RECOVERY_RECORD, type RecoveryRecord, writeRecord } from '../core/records.js';
import { hostOf } from '../core/topology.js';
import { readCloneCoordinates } from '../mysql/clone-info.js';
import { gtidCovers } from '../mysql/gtid.js';
import { decompressor } from '../stream/compression.js';
import { manifestKey } from '../store/layout.js';
import { type Manifest, parseManifest } from '../store/manifest.js';
import { Store, where } from '../store/s3.js';
import { extractCommand, unzstdCommand } from '../stream/backup-tool.js';
import { spawnOwned } from '../stream/child.js';
import { chunkCollector } from '../stream/meter.js';
import { missingClosingFiles } from './clone-attempt.js';
import { prepareStaged } from './clone.js';
import { promoteStaging, removeStaging, resetStaging } from './datadir.js';
import { type PeerReport, probePeers, statusOver } from '../cluster/peer-status.js';
import { agentTransport } from '../core/tls.js';
import type { InitConfig, RestoreFrom } from './settings.js';
import { writeBackAlong } from './writeback.js';

/** The manifest `from` names (RESTORE_FROM, or the drill's BACKUP_ID); a missing id is refused with the ids there are. */
export async function chooseBackup(store: Store, from: RestoreFrom, variable = 'RESTORE_FROM'): Promise<Manifest> {
  // An id is looked up directly: the listing is only for `latest` and for the refusal's list of ids.
  if (from.kind === 'id') {
    const key = manifestKey(store.config.prefix, from.id);
    const text = await store.getText(key);
    if (text !== null) return parseManifest(text, key);
  }
  const complete = (await store.list()).filter((b) => b.hasManifest);
  const setting = `${variable}=${from.kind === 'latest' ? 'latest' : from.id}`;
  if (complete.length === 0) throw new BackupError(`${setting}: there is no complete backup in ${where(store.config)}`);
  const chosen = from.kind === 'latest' ? complete[0]! : complete.find((b) => b.id === from.id);
  if (chosen === undefined) {
    throw new BackupError(`${setting} names no complete backup in ${where(store.config)}; the complete ones, newest first: ${complete.map((b) => b.id).join(', ')}`);
  }
  const key = manifestKey(store.config.prefix, chosen.id);
  return parseManifest((await store.getText(key)) ?? '', key);
}

/**
 * Streams the backup's data object into `stagingDir` through the stream tool; resolves only when
 * the stored bytes match the manifest's size and SHA-256, the tool exited 0 and silent, and the
 * closing files are there.
 */
export async function restoreInto(
  store: Store,
  manifest: Manifest,
  tools: { readonly stream: string; readonly zstd: string },
  stagingDir: string,
  log: Logger,
  signal: AbortSignal,
): Promise<{ bytes: number; durationMs: number }> {
  const started = Date.now();
  const { key, sha256, stored_bytes: expected } = manifest.data;
  const { body } = await store.download(key, signal);
  const hash = createHash('sha256');
  const got = { bytes: 0 };
  const collect = chunkCollector();
  body.on('data', (chunk: Buffer) => {
    got.bytes += chunk.length;
    hash.update(chunk);
    collect(chunk.length);
  });
  // With zstd installed the decompressed stream goes child to child (zstd -d → the tool), not through here.
  const unzstd = manifest.data.compression === 'zstd' && tools.zstd !== '' ? spawnOwned({ ...unzstdCommand(tools.zstd), stdin: 'pipe', stdout: 'pipe', signal, killWith: 'SIGTERM', log }) : null;
  const child = spawnOwned({ ...extractCommand(tools.stream, stagingDir), stdin: unzstd?.stdout ?? 'pipe', stdout: 'ignore', signal, killWith: 'SIGKILL', log });
  unzstd?.stdout!.destroy();
  const refuse = (why: string) => new BackupError(`backup ${manifest.id} (${key}): ${why}; refusing to prepare it, DATA_DIR untouched`);
  try {
    if (unzstd) await Promise.all([pipeline(body, unzstd.stdin!), unzstd.done]);
    else await pipeline(body, decompressor(manifest.data.compression), child.stdin!);
  } catch (err) {
    unzstd?.kill();
    if (signal.aborted) throw err;
    const toolErr = await child.done.then(() => null, (e: unknown) => e);
    const tool = toolErr === null ? child.stderrTail() : errorMessage(toolErr);
    throw refuse(`the stored object is corrupt or truncated: reading it failed after ${got.bytes} of ${expected} bytes (${errorMessage(err)}${tool ? `; ${tool}` : ''})`);
  }
  try {
    await child.done;
  } catch (err) {
    throw refuse(`extracting it failed: ${errorMessage(err)}`);
  }
  const digest = hash.digest('hex');
  if (got.bytes !== expected || digest !== sha256) {
    throw refuse(`the stored object does not match its manifest: ${got.bytes} bytes with SHA-256 ${digest}, the manifest says ${expected} bytes with SHA-256 ${sha256}`);
  }
  if (child.stderrTail() !== '') throw refuse(`extracting it failed: ${child.stderrTail()}`);
  const missing = await missingClosingFiles(stagingDir);
  if (missing.length > 0) throw refuse(`the stream is incomplete: no ${missing.join(', ')}`);
  return { bytes: got.bytes, durationMs: Date.now() - started };
}

/**
 * Restores a backup into DATA_DIR, as a clone is accepted. `why` goes into the clone record;
 * `continueGtid`: write the recovery record, so the sidecar makes the restored primary continue
 * the backup's GTID history (as after PRIMARY_EMPTY_START=recover).
 */
export async function restoreDataDir(
  config: InitConfig,
  store: Store,
  manifest: Manifest,
  how: {
    readonly choice: 'restore' | 'backup';
    readonly why: string;
    readonly continueGtid: boolean;
    /** A point-in-time restore: applied to the prepared staging directory before the move; resolves with the GTID state to continue from. */
    readonly replay?: (staged: string) => Promise<string>;
  },
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const started = Date.now();
  const source = `s3://${store.config.bucket}/${manifestKey(store.config.prefix, manifest.id)}`;
  let prepared = false;
  try {
    const dir = await resetStaging(config.dataDir);
    log.info({ phase: 'stream', peer: source, backup_id: manifest.id, bytes: manifest.data.stored_bytes }, `restoring backup ${manifest.id}`);
    const writtenBack = writeBackAlong(dir, log, signal);
    const result = await restoreInto(store, manifest, config.tools, dir, log, signal).finally(writtenBack);
    const seconds = result.durationMs / 1000;
    log.info(
      { phase: 'stream', peer: source, bytes: result.bytes, duration_ms: result.durationMs, rate_mb_s: +(manifest.data.raw_bytes / 1e6 / seconds).toFixed(1), sha256: manifest.data.sha256 },
      'backup downloaded, SHA-256 matches the manifest',
    );
    const record = {
      source: { host: source, port: null, ordinal: manifest.source.ordinal, choice: how.choice, why: how.why },
      bytes: manifest.data.raw_bytes,
      stream_duration_ms: result.durationMs,
      skipped: [],
    };
    await prepareStaged(config, log, signal, started, record, async (staged) => {
      if (!how.continueGtid) return;
      const gtid = how.replay ? await how.replay(staged) : ((await readCloneCoordinates(staged))?.coordinates.gtid ?? null);
      if (gtid === null) {
        log.warn({ phase: 'primary-start', backup_id: manifest.id }, 'the backup carries no GTID: the restored primary starts a new GTID history');
        return;
      }
      const recovery: RecoveryRecord = {
        decision: 'restore',
        reason: `restored from backup ${manifest.id} (${how.why})`,
        source: { host: source, ordinal: manifest.source.ordinal },
        gtid,
        behind: [],
        continuity: null,
      };
      await writeRecord(staged, RECOVERY_RECORD, recovery);
      log.warn({ phase: 'primary-start', backup_id: manifest.id, gtid }, `restored primary will continue from GTID ${gtid}`);
    });
    prepared = true;
    const { entries } = await promoteStaging(config.dataDir);
    log.info({ phase: 'done', peer: source, backup_id: manifest.id, choice: how.choice, entries, duration_ms: Date.now() - started }, 'backup restored into the datadir');
  } catch (err) {
    if (!prepared) await removeStaging(config.dataDir);
    throw err;
  }
}

/** RESTORE_FROM at ordinal 0: the chosen backup restored, its GTID history continued. */
export async function restorePrimary(config: InitConfig, log: Logger, signal: AbortSignal): Promise<void> {
  const store = new Store(config.store!);
  try {
    const point = config.restoreTo;
    if (point !== null) {
      // Planned in full before DATA_DIR is touched: a refusal leaves it empty.
      const { describePoint, planRestore, planSummary, replayInto } = await import('./pitr.js');
      const plan = await store.reachWith(signal, () => planRestore(store, point, signal)).catch((err: unknown) => {
        throw err instanceof BackupError ? new BackupError(`${err.message}; nothing restored, DATA_DIR untouched`, { cause: err }) : err;
      });
      log.info({ phase: 'plan', ...planSummary(plan) }, `point-in-time restore: backup ${plan.manifest.id}, then ${plan.plan.files.length} archived binary logs up to ${plan.plan.lastEvent?.gtid ?? 'the backup'}`);
      const why = `RESTORE_FROM=latest ${describePoint(point)}`;
      const replay = async (staged: string) => {
        await replayInto(store, plan, staged, config.tools, log, signal);
        return plan.continueFrom;
      };
      await restoreDataDir(config, store, plan.manifest, { choice: 'restore', why, continueGtid: true, replay }, log, signal);
      return;
    }
    const manifest = await store.reachWith(signal, () => chooseBackup(store, config.restoreFrom!));
    const why = `RESTORE_FROM=${config.restoreFrom!.kind === 'latest' ? 'latest' : manifest.id}`;
    await restoreDataDir(config, store, manifest, { choice: 'restore', why, continueGtid: true }, log, signal);
  } finally {
    store.destroy();
  }
}

/**
 * Why a replica cannot be seeded from `manifest` and then follow the primary by GTID, or null
 * when it can: the backup must carry a GTID, and the primary's binary logs must still begin at or
 * before it (its `binlog_start_gtid` covered by the backup's GTID).
 */
export function seedProblem(manifest: Manifest, primary: PeerReport): string | null {
  const gtid = manifest.coordinates.gtid;
  if (gtid === null) return `the newest backup ${manifest.id} carries no GTID: a replica seeded from it could not find its place in the primary's binary logs`;
  if (primary.status === null) return `the primary did not answer /status (${primary.error ?? 'no answer'}): cannot check that it still has the binary logs from the backup's GTID ${gtid}`;
  const start = primary.status.binlogStartGtid;
  if (start === null) return `the primary does not say where its binary logs begin: cannot check that it still has them from the backup's GTID ${gtid}`;
  if (!gtidCovers(gtid, start)) {
    return `the primary no longer has the binary logs from the newest backup's GTID ${gtid} (its oldest binary log begins after ${start === '' ? 'nothing' : start}): a replica seeded from it could not catch up`;
  }
  return null;
}

/**
 * CLONE_SOURCE=backup on a replica: restores the newest complete backup when the primary can
 * serve the rest from its binary logs, so no peer's /backup is called. Returns null when seeded,
 * else the reason a peer clone must do instead (logged by the caller).
 */
export async function seedReplica(config: InitConfig, log: Logger, signal: AbortSignal): Promise<string | null> {
  const store = new Store(config.store!);
  try {
    const latest = (await store.reachWith(signal, () => store.list())).find((b) => b.hasManifest);
    if (latest === undefined) return `there is no complete backup in ${where(store.config)}`;
    const key = manifestKey(store.config.prefix, latest.id);
    const manifest = parseManifest((await store.getText(key)) ?? '', key);
    const [primary] = await probePeers([{ ordinal: 0, host: hostOf(config.peerHosts, 0) }], config.backup.port, config.peers.statusTimeoutMs, statusOver(agentTransport(config.tls)));
    const problem = seedProblem(manifest, primary!);
    if (problem !== null) return problem;
    await restoreDataDir(config, store, manifest, { choice: 'backup', why: `CLONE_SOURCE=backup: the newest complete backup, GTID ${manifest.coordinates.gtid}`, continueGtid: false }, log, signal);
    return null;
  } catch (err) {
    if (signal.aborted || !(err instanceof BackupError || err instanceof StoreError)) throw err;
    return errorMessage(err);
  } finally {
    store.destroy();
  }
}
