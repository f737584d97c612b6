/**
 * Cloning the datadir from a peer: attempts in rounds with backoff until one stream is complete
 * and verified, then prepare, the clone record, fsync, and the move into DATA_DIR with `mysql/`
 * last. Used for a new replica and for ordinal 0 rebuilt from a replica (primary-guard.ts); a
 * `ClonePlan` says where from and what to add before the move.
 */
import { CloneError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { agentTransport } from '../core/tls.js';
import { type CloneRecord, writeCloneRecord } from '../core/records.js';
import { type Clock, retry } from '../core/retry.js';
import { hostPort } from '../core/topology.js';
import { extractCommand, prepareCommand, syncCommand, unzstdCommand } from '../stream/backup-tool.js';
import { type OwnedChild, spawnOwned } from '../stream/child.js';
import { NO_SPACE, filledUp, freeBytes, mb } from '../stream/sizes.js';
import { type CloneSource, cloneInto } from './clone-attempt.js';
import { type Candidate, type SourceRanking, cloneFromFirst, label } from './clone-source.js';
import { markPrepared, promoteStaging, removeStaging, resetStaging, stagingDir } from './datadir.js';
import type { InitConfig } from './settings.js';
import { writeBackAlong } from './writeback.js';

const INITIAL_RETRY_DELAY_MS = 1000;

/** What a clone needs to know besides the configuration: where from, and what to add before the move. */
export interface ClonePlan {
  /** CLONE_SOURCE's value (or `recover`), kept in the clone record. */
  readonly choice: string;
  /** Called before every round: the candidates in order (auto asks the peers again each time). */
  readonly rank: () => Promise<SourceRanking>;
  /** Runs on the prepared clone in the staging directory, before it is moved into DATA_DIR. */
  readonly beforeMove?: (stagingDir: string, source: Candidate) => Promise<void>;
}

/** One line per peer passed over with the reason, and one with the order chosen. */
export function logRanking(log: Logger, ranking: SourceRanking): void {
  for (const s of ranking.skipped) {
    log.info({ phase: 'source', peer: s.host, peer_ordinal: s.ordinal, reason: s.reason }, 'clone source skipped');
  }
  log.info(
    {
      phase: 'source',
      candidates: ranking.candidates.map((c) => ({ peer: c.host, peer_ordinal: c.ordinal, why: c.why })),
      skipped: ranking.skipped.length,
    },
    ranking.candidates.length > 0 ? `clone source candidates: ${ranking.candidates.map(label).join(', ')}` : 'no clone source candidate',
  );
}

/**
 * The end of every way into an empty datadir (a clone, a restore): prepare the staging
 * directory, write the clone record, let the caller add its own records, flush, and mark it
 * prepared, from which point the move into DATA_DIR is resumed rather than redone.
 */
export async function prepareStaged(
  config: InitConfig,
  log: Logger,
  signal: AbortSignal,
  started: number,
  record: Omit<CloneRecord, 'duration_ms' | 'finished_at'>,
  beforeMove: (stagingDir: string) => Promise<void> | undefined,
): Promise<void> {
  const dir = stagingDir(config.dataDir);
  // From here the clone still writes (prepare grows tablespaces, the records, the flush): a
  // full volume is named as such, and not retried by a restart that would fill it again.
  let step = 'preparing the clone';
  let child: OwnedChild | null = null;
  try {
    const prepareStarted = Date.now();
    log.info({ phase: 'prepare', tool: config.tools.backup }, 'preparing the clone');
    child = spawnOwned({ ...prepareCommand(config.tools.backup, dir), stdin: 'ignore', stdout: 'ignore', signal, killWith: 'SIGKILL', log, watchFor: NO_SPACE });
    await child.done;
    log.info({ phase: 'prepare', duration_ms: Date.now() - prepareStarted }, 'clone prepared');

    step = 'finishing the clone';
    child = null;
    await writeCloneRecord(dir, { ...record, duration_ms: Date.now() - started, finished_at: new Date().toISOString() });
    await beforeMove(dir);
    // mbstream does not fsync: get every extracted byte to disk before mysql/ makes it count.
    const syncStarted = Date.now();
    child = spawnOwned({ ...syncCommand(dir), stdin: 'ignore', stdout: 'ignore', signal, killWith: 'SIGTERM', log, watchFor: NO_SPACE });
    await child.done;
    log.info({ phase: 'sync', duration_ms: Date.now() - syncStarted }, 'clone flushed to disk');
    await markPrepared(config.dataDir);
  } catch (err) {
    const free = await freeBytes(dir).catch(() => Infinity);
    if (signal.aborted || !filledUp([errorMessage(err), child?.watched() ?? null], free)) throw err;
    throw new CloneError(
      `DATA_DIR's filesystem filled up while ${step} (the stream took ${mb(record.bytes)}, ${mb(free)} is left): prepare applies what was written during the backup, which grows tablespaces; grow the volume or free space (${child?.watched() ?? errorMessage(err)})`,
      false,
      { cause: err },
    );
  }
}

export async function cloneDataDir(config: InitConfig, log: Logger, signal: AbortSignal, plan: ClonePlan, clock?: Clock): Promise<void> {
  const started = Date.now();
  let prepared = false;
  try {
    const { result, candidate, skipped } = await retry(
      async (attempt) => {
        const ranking = await plan.rank();
        const outcome = await cloneFromFirst(
          ranking,
          async (c) => {
            const source: CloneSource = {
              host: c.host,
              port: config.backup.port,
              token: config.backup.token,
              transport: agentTransport(config.tls),
              accept: config.clone.compression,
              maxRateMbS: config.clone.maxRateMbS,
              autoZstdBelowMbS: config.clone.autoZstdBelowMbS,
            };
            const dir = await resetStaging(config.dataDir);
            log.info({ phase: 'stream', peer: hostPort(c.host, source.port), peer_ordinal: c.ordinal, why: c.why, attempt }, 'clone attempt');
            const unzstd = config.tools.zstd === '' ? null : unzstdCommand(config.tools.zstd);
            const writtenBack = writeBackAlong(dir, log, signal);
            return cloneInto(source, dir, extractCommand(config.tools.stream, dir), log, signal, config.clone.timeouts, unzstd).finally(writtenBack);
          },
          (c, err, remaining) =>
            log.warn(
              { phase: 'source', peer: c.host, peer_ordinal: c.ordinal, remaining, err: (err as Error).message },
              remaining > 0 ? 'clone source failed, trying the next' : 'clone source failed',
            ),
        );
        return { ...outcome, skipped: ranking.skipped };
      },
      {
        policy: {
          deadlineMs: config.clone.retryDeadlineMs,
          initialDelayMs: INITIAL_RETRY_DELAY_MS,
          maxDelayMs: config.clone.retryMaxDelayMs,
        },
        classify: (err) =>
          err instanceof CloneError
            ? { retry: err.retryable, afterMs: (err as CloneError & { retryAfterMs?: number }).retryAfterMs }
            : { retry: false },
        onRetry: (err, attempt, delayMs) =>
          log.warn({ phase: 'stream', attempt, retry_in_ms: delayMs, err: (err as Error).message }, 'clone attempt failed, retrying'),
        signal,
        clock,
      },
    );
    const peer = hostPort(candidate.host, config.backup.port);
    const seconds = result.durationMs / 1000;
    log.info(
      { phase: 'stream', peer, peer_ordinal: candidate.ordinal, bytes: result.bytes, duration_ms: result.durationMs, rate_mb_s: +(result.bytes / 1e6 / seconds).toFixed(1) },
      'stream complete and verified',
    );

    const record: Omit<CloneRecord, 'duration_ms' | 'finished_at'> = {
      source: { host: candidate.host, port: config.backup.port, ordinal: candidate.ordinal, choice: plan.choice, why: candidate.why },
      bytes: result.bytes,
      stream_duration_ms: result.durationMs,
      skipped,
    };
    await prepareStaged(config, log, signal, started, record, (dir) => plan.beforeMove?.(dir, candidate));
    prepared = true;
    const { entries } = await promoteStaging(config.dataDir);
    log.info(
      { phase: 'done', peer, peer_ordinal: candidate.ordinal, choice: plan.choice, bytes: result.bytes, entries, duration_ms: Date.now() - started },
      'clone accepted into the datadir',
    );
  } catch (err) {
    // A prepared clone is kept so the next run finishes the move; anything earlier is dropped.
    if (!prepared) await removeStaging(config.dataDir);
    throw err;
  }
}
