/**
 * Point-in-time restore: RESTORE_FROM=latest with RESTORE_TO or RESTORE_TO_GTID at ordinal 0, and
 * `mysql-agent restore-plan`, which prints the same plan and touches nothing.
 *
 * 1. The plan, before anything is written: the newest complete backup finished at or before the
 *    point (or whose GTID the point covers), the archive's index records in chain order, and
 *    planPointInTime (agent/mysql/binlog.ts) over them; the file the point falls in is streamed
 *    once, its SHA-256 checked, for its transactions. A refusal (a gap, a point past the newest
 *    archived event, before the backup) is the error, DATA_DIR untouched.
 * 2. The backup restored and prepared into the staging directory as by RESTORE_FROM.
 * 3. Before the move into DATA_DIR: each planned file downloaded beside it and its SHA-256 and size
 *    checked against its index record, a throwaway server started on the staged datadir, and
 *    `mariadb-binlog --start-position=<backup GTID> --stop-position=<last wanted state> files` fed
 *    straight into `mariadb` (the reader's stdout is the client's stdin: no byte through JavaScript).
 * 4. The recovery record names the stop state, so the sidecar makes the server continue that GTID
 *    history as after a plain restore.
 */
import { createHash } from '../core/builtins.js';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BackupError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { type BinlogTransaction, type PitrPlan, type PitrTarget, binlogTransactions, planPointInTime } from '../mysql/binlog.js';
import { gtidCovers } from '../mysql/gtid.js';
import { type BinlogIndexRecord, archiveChain, archiveOrder, binlogsPrefix, indexKeys, parseIndexRecord } from '../store/binlog-archive.js';
import { manifestKey } from '../store/layout.js';
import { type Manifest, parseManifest } from '../store/manifest.js';
import { Store, where } from '../store/s3.js';
import { spawnOwned } from '../stream/child.js';
import type { RestorePlanConfig, RestorePoint } from './settings.js';
import { socketOf, withThrowawayServer } from './throwaway-server.js';

/** What a point-in-time restore will do: the backup and the plan on top of it. */
export interface RestorePlan {
  readonly manifest: Manifest;
  readonly plan: PitrPlan;
  /** The GTID state the restored server continues from: the stop, or the backup's when nothing is replayed. */
  readonly continueFrom: string;
}

const fmt = (t: number) => new Date(t * 1000).toISOString().replace('.000Z', 'Z');
export const describePoint = (p: RestorePoint) => ('time' in p ? `RESTORE_TO=${fmt(p.time)}` : `RESTORE_TO_GTID=${p.gtid}`);

/** When a backup's consistent point is known to be passed: its end, rounded up to the second. */
const finishedAt = (m: Manifest) => Math.ceil(Date.parse(m.finished_at) / 1000);

/** The newest of `manifests` (newest first) that the point is at or after; it must carry a GTID. */
export function backupBefore(manifests: readonly Manifest[], point: RestorePoint): Manifest | null {
  return manifests.find((m) => m.coordinates.gtid !== null && ('time' in point ? finishedAt(m) <= point.time : gtidCovers(point.gtid, m.coordinates.gtid))) ?? null;
}

/** Every index record under the cluster's prefix, in the order a restore walks them. */
export async function readArchiveIndex(store: Store): Promise<BinlogIndexRecord[]> {
  const records: BinlogIndexRecord[] = [];
  for (const { key } of indexKeys(store.config.prefix, await store.listKeys(binlogsPrefix(store.config.prefix)))) {
    const text = await store.getText(key);
    if (text !== null) records.push(parseIndexRecord(text, key));
  }
  return archiveOrder(records);
}

/**
 * Streams an archived file through its SHA-256 and size check: to `path` when given, else through
 * the reader for its transactions. A file other than its index record says is refused.
 */
async function fetchBinlog(store: Store, record: BinlogIndexRecord, path: string | null, signal: AbortSignal): Promise<readonly BinlogTransaction[]> {
  const { body } = await store.download(record.key, signal);
  const hash = createHash('sha256');
  let size = 0;
  async function* hashed() {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  }
  let transactions: readonly BinlogTransaction[] = [];
  let unreadable: unknown = null;
  try {
    if (path) await pipeline(hashed(), createWriteStream(path));
    else transactions = await binlogTransactions(record.name, hashed());
  } catch (err) {
    if (signal.aborted) throw err;
    unreadable = err;
  } finally {
    body.destroy();
  }
  const digest = hash.digest('hex');
  if (unreadable !== null || size !== record.size || digest !== record.sha256) {
    throw new BackupError(
      `archived binary log ${record.name} (${record.key}) does not match its index record: ${unreadable !== null ? `reading it failed after ${size} bytes (${errorMessage(unreadable)})` : `${size} bytes with SHA-256 ${digest}`}, the record says ${record.size} bytes with SHA-256 ${record.sha256}; refusing it`,
    );
  }
  return transactions;
}

/** The plan for `point`, or a BackupError saying why there is none; reads the store only. */
export async function planRestore(store: Store, point: RestorePoint, signal: AbortSignal): Promise<RestorePlan> {
  const refuse = (why: string) => new BackupError(`${describePoint(point)}: ${why}`);
  const manifests: Manifest[] = [];
  for (const b of (await store.list()).filter((x) => x.hasManifest)) {
    const key = manifestKey(store.config.prefix, b.id);
    manifests.push(parseManifest((await store.getText(key)) ?? '', key));
  }
  const manifest = backupBefore(manifests, point);
  if (manifest === null) {
    throw refuse(`no complete backup with a GTID in ${where(store.config)} was taken before it (${manifests.map((m) => `${m.id} finished ${m.finished_at}, GTID ${m.coordinates.gtid}`).join('; ') || 'none'})`);
  }
  const index = archiveChain(await readArchiveIndex(store), manifest.coordinates.gtid!);
  const target: PitrTarget = point;
  const coordinates = { gtid: manifest.coordinates.gtid!, takenAt: finishedAt(manifest) };
  const transactions = new Map<string, readonly BinlogTransaction[]>();
  for (;;) {
    const result = planPointInTime(coordinates, index, target, transactions);
    if (result.kind === 'refused') throw refuse(result.message);
    if (result.kind === 'plan') {
      const stop = result.options.find((o) => o.startsWith('--stop-position='))?.slice('--stop-position='.length);
      return { manifest, plan: result, continueFrom: stop ?? manifest.coordinates.gtid! };
    }
    const record = index.find((r) => r.sha256 === result.file.sha256)!;
    transactions.set(record.sha256, await fetchBinlog(store, record, null, signal));
  }
}

/** The plan as `restore-plan` prints it (and init logs it). */
export function planSummary(p: RestorePlan): Record<string, unknown> {
  return {
    backup: { id: p.manifest.id, finished_at: p.manifest.finished_at, gtid: p.manifest.coordinates.gtid },
    binlogs: p.plan.files.map((f) => ({ name: f.name, server_id: f.serverId, start: f.startState, end: f.endState, size: f.size, sha256: f.sha256 })),
    last_event: p.plan.lastEvent === null ? null : { gtid: p.plan.lastEvent.gtid, committed_at: fmt(p.plan.lastEvent.commitTime) },
    continue_from: p.continueFrom,
    replay: p.plan.options,
  };
}

export interface ReplayTools {
  readonly server: string;
  readonly binlog: string;
  readonly client: string;
}

/**
 * Applies the plan's binary logs to the prepared datadir `staged`: each file downloaded into a
 * work directory inside it and checked, a throwaway server on it, the reader's output handed
 * to the client as its stdin. The work directory is removed whatever happens.
 */
export async function replayInto(store: Store, p: RestorePlan, staged: string, tools: ReplayTools, log: Logger, signal: AbortSignal): Promise<void> {
  if (p.plan.files.length === 0) return;
  const work = join(staged, '.mysql-agent-pitr');
  await mkdir(join(work, 'tmp'), { recursive: true });
  try {
    const paths: string[] = [];
    for (const [i, f] of p.plan.files.entries()) {
      const record = f as BinlogIndexRecord;
      // Numbered: two servers' files may share a name.
      const path = join(work, `${String(i).padStart(4, '0')}-${f.name}`);
      await fetchBinlog(store, record, path, signal);
      paths.push(path);
      log.info({ phase: 'replay', file: f.name, key: record.key, bytes: f.size, sha256: f.sha256 }, 'archived binary log downloaded, SHA-256 matches its index record');
    }
    const started = Date.now();
    await withThrowawayServer({ server: tools.server, files: { dataDir: staged, runDir: work, name: 'pitr' }, what: "the point-in-time restore's server", log, signal }, async () => {
      const reader = spawnOwned({
        command: tools.binlog,
        args: ['--no-defaults', ...p.plan.options, ...paths],
        env: {},
        stdin: 'ignore',
        stdout: 'pipe',
        signal,
        killWith: 'SIGKILL',
        log,
        // A stop never reached is only a warning (exit 0): the plan said it is there.
        watchFor: /Did not reach stop position|missing data/i,
      });
      const writer = spawnOwned({
        command: tools.client,
        args: ['--no-defaults', `--socket=${socketOf({ dataDir: staged, runDir: work, name: 'pitr' })}`, '--user=root', '--binary-mode'],
        env: {},
        stdin: reader.stdout!,
        stdout: 'ignore',
        signal,
        killWith: 'SIGKILL',
        log,
      });
      // The parent's copy of the pipe: closed, so only the client reads it.
      reader.stdout!.destroy();
      try {
        await Promise.all([reader.done, writer.done]);
      } catch (err) {
        reader.kill();
        writer.kill();
        throw new BackupError(`replaying the archived binary logs failed: ${errorMessage(err)}; DATA_DIR untouched`);
      }
      if (reader.watched() !== null) throw new BackupError(`replaying the archived binary logs stopped short: ${reader.watched()}; DATA_DIR untouched`);
    });
    log.info(
      { phase: 'replay', files: paths.length, bytes: p.plan.files.reduce((a, f) => a + f.size, 0), duration_ms: Date.now() - started, last_gtid: p.plan.lastEvent?.gtid ?? null },
      'archived binary logs applied up to the point',
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** `mysql-agent restore-plan`: the plan as one line of JSON on `out`; a refusal is the command's error (exit 1). */
export async function runRestorePlan(config: RestorePlanConfig, signal: AbortSignal, out: NodeJS.WritableStream): Promise<void> {
  const store = new Store(config.store);
  try {
    out.write(`${JSON.stringify(planSummary(await store.reachWith(signal, () => planRestore(store, config.point, signal))))}\n`);
  } finally {
    store.destroy();
  }
}
