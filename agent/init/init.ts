/**
 * `mysql-agent init`: the init container. Writes the server's config fragments, then makes
 * sure a replica's datadir is initialised, cloning it from a peer when it is empty.
 *
 * | datadir state                         | action                                        |
 * |---------------------------------------|-----------------------------------------------|
 * | ordinal 0 (primary), has mysql/       | none                                          |
 * | ordinal 0 (primary), no mysql/        | primary-guard.ts: start empty, refuse, recover |
 * | has mysql/                            | none (drop a leftover staging directory)      |
 * | prepared staging from a stopped run   | finish moving it in                           |
 * | empty (lost+found and staging aside)  | clone, verify, prepare, move in (mysql/ last) |
 * | other files without mysql/            | refuse: not ours to delete                    |
 */
import { extractCommand, prepareCommand } from '../stream/backup-tool.js';
import { spawnOwned } from '../stream/child.js';
import { cloneInto, type CloneSource } from './clone-attempt.js';
import { type CloneRecord, writeCloneRecord } from '../core/records.js';
import { type Candidate, type SourceRanking, cloneFromFirst, fixedCandidate, label, lowerOrdinals, rankCloneSources } from './clone-source.js';
import type { Config } from '../core/settings.js';
import {
  foreignDataDirError,
  inspectDataDir,
  markPrepared,
  promoteStaging,
  removeStaging,
  resetStaging,
  stagingDir,
} from './datadir.js';
import { CloneError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { probePeers } from './peer-status.js';
import { guardEmptyPrimary } from './primary-guard.js';
import { type Clock, retry } from '../core/retry.js';
import { ensureRoleConfig } from './role-config.js';
import type { Ordinal } from '../core/topology.js';

const INITIAL_RETRY_DELAY_MS = 1000;

export async function runInit(config: Config, log: Logger, signal: AbortSignal, clock?: Clock): Promise<void> {
  const { files } = await ensureRoleConfig(config);
  log.info({ phase: 'config', files, server_id: config.serverId }, 'server config written');
  const state = await inspectDataDir(config.dataDir);
  if (config.role === 'primary') {
    if (state.kind === 'initialised') {
      if (state.leftoverStaging) await removeStaging(config.dataDir);
      log.info({ phase: 'clone' }, 'primary: datadir already initialised');
      return;
    }
    if (state.kind === 'prepared-staging') {
      const { entries } = await promoteStaging(config.dataDir);
      log.info({ phase: 'move', entries }, 'finished moving a prepared recovery clone left by an earlier run');
      return;
    }
    // Empty (or files without mysql/, which the server's own initialisation judges).
    await guardEmptyPrimary(config, log, (plan) => cloneDataDir(config, log, signal, plan, clock));
    return;
  }
  switch (state.kind) {
    case 'initialised':
      if (state.leftoverStaging) await removeStaging(config.dataDir);
      log.info({ phase: 'clone' }, 'datadir already initialised: no clone');
      return;
    case 'foreign':
      throw foreignDataDirError(config.dataDir, state.entries);
    case 'prepared-staging': {
      const { entries } = await promoteStaging(config.dataDir);
      log.info({ phase: 'move', entries }, 'finished moving a prepared clone left by an earlier run');
      return;
    }
    case 'empty':
      if (state.leftoverStaging) log.warn({ phase: 'clone' }, 'removing the staging directory of an interrupted clone');
      await cloneDataDir(config, log, signal, replicaClonePlan(config, log), clock);
  }
}

/** What a clone needs to know besides the configuration: where from, and what to add before the move. */
export interface ClonePlan {
  /** CLONE_SOURCE's value (or `recover`), kept in the clone record. */
  readonly choice: string;
  /** Called before every round: the candidates in order (auto asks the peers again each time). */
  readonly rank: () => Promise<SourceRanking>;
  /** Runs on the prepared clone in the staging directory, before it is moved into DATA_DIR. */
  readonly beforeMove?: (stagingDir: string, source: Candidate) => Promise<void>;
}

/** CLONE_SOURCE on a replica: a fixed peer, or the ranking of the lower ordinals' answers. */
function replicaClonePlan(config: Config, log: Logger): ClonePlan {
  const fixed = fixedCandidate(config.cloneSource.choice, config.ordinal, (n) => config.peerHost(n as Ordinal));
  return {
    choice: config.cloneSource.choice.kind,
    rank: async () => {
      if (fixed) return { candidates: [fixed], skipped: [] };
      const peers = lowerOrdinals(config.ordinal, (n) => config.peerHost(n as Ordinal));
      const ranking = rankCloneSources(await probePeers(peers, config.backup.port, config.peers.statusTimeoutMs), config.cloneSource.maxLagSeconds);
      logRanking(log, ranking);
      return ranking;
    },
  };
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

export async function cloneDataDir(config: Config, log: Logger, signal: AbortSignal, plan: ClonePlan, clock?: Clock): Promise<void> {
  const started = Date.now();
  let prepared = false;
  try {
    const { result, candidate, skipped } = await retry(
      async (attempt) => {
        const ranking = await plan.rank();
        const outcome = await cloneFromFirst(
          ranking,
          async (c) => {
            const source: CloneSource = { host: c.host, port: config.backup.port, token: config.backup.token };
            const dir = await resetStaging(config.dataDir);
            log.info({ phase: 'stream', peer: `${c.host}:${source.port}`, peer_ordinal: c.ordinal, why: c.why, attempt }, 'clone attempt');
            return cloneInto(source, dir, extractCommand(config, dir), log, signal);
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
    const peer = `${candidate.host}:${config.backup.port}`;
    const seconds = result.durationMs / 1000;
    log.info(
      { phase: 'stream', peer, peer_ordinal: candidate.ordinal, bytes: result.bytes, duration_ms: result.durationMs, rate_mb_s: +(result.bytes / 1e6 / seconds).toFixed(1) },
      'stream complete and verified',
    );

    const dir = stagingDir(config.dataDir);
    const prepareStarted = Date.now();
    log.info({ phase: 'prepare', tool: config.tools.backup }, 'preparing the clone');
    await spawnOwned({ ...prepareCommand(config, dir), stdin: 'ignore', stdout: 'ignore', signal, killWith: 'SIGKILL', log }).done;
    log.info({ phase: 'prepare', duration_ms: Date.now() - prepareStarted }, 'clone prepared');

    const record: CloneRecord = {
      source: { host: candidate.host, port: config.backup.port, ordinal: candidate.ordinal, choice: plan.choice, why: candidate.why },
      bytes: result.bytes,
      stream_duration_ms: result.durationMs,
      duration_ms: Date.now() - started,
      finished_at: new Date().toISOString(),
      skipped,
    };
    await writeCloneRecord(dir, record);
    await plan.beforeMove?.(dir, candidate);
    // mbstream does not fsync: get every extracted byte to disk before mysql/ makes it count.
    const syncStarted = Date.now();
    await spawnOwned({ command: 'sync', args: ['-f', dir], stdin: 'ignore', stdout: 'ignore', signal, killWith: 'SIGTERM', log }).done;
    log.info({ phase: 'sync', duration_ms: Date.now() - syncStarted }, 'clone flushed to disk');
    await markPrepared(config.dataDir);
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
