/**
 * `mysql-agent init`: the init container. Writes the server's config fragments, then makes
 * sure a replica's datadir is initialised, cloning it from a peer when it is empty.
 *
 * | datadir state                         | action                                        |
 * |---------------------------------------|-----------------------------------------------|
 * | ordinal 0 (primary)                   | none: the server initialises its own datadir  |
 * | has mysql/                            | none (drop a leftover staging directory)      |
 * | prepared staging from a stopped run   | finish moving it in                           |
 * | empty (lost+found and staging aside)  | clone, verify, prepare, move in (mysql/ last) |
 * | other files without mysql/            | refuse: not ours to delete                    |
 */
import { extractCommand, prepareCommand } from './backup-tool.js';
import { spawnOwned } from './child.js';
import { cloneInto, type CloneSource } from './clone.js';
import type { Config } from './config.js';
import {
  foreignDataDirError,
  inspectDataDir,
  markPrepared,
  promoteStaging,
  removeStaging,
  resetStaging,
  stagingDir,
} from './datadir.js';
import { CloneError } from './errors.js';
import type { Logger } from './log.js';
import { type Clock, retry } from './retry.js';
import { ensureRoleConfig } from './role-config.js';
import type { Ordinal } from './topology.js';

const INITIAL_RETRY_DELAY_MS = 1000;

export async function runInit(config: Config, log: Logger, signal: AbortSignal, clock?: Clock): Promise<void> {
  const { files } = await ensureRoleConfig(config);
  log.info({ phase: 'config', files, server_id: config.serverId }, 'server config written');
  if (config.role === 'primary') {
    log.info({ phase: 'clone' }, 'primary: no clone, the server initialises its own datadir');
    return;
  }
  const state = await inspectDataDir(config.dataDir);
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
      await cloneDataDir(config, log, signal, clock);
  }
}

async function cloneDataDir(config: Config, log: Logger, signal: AbortSignal, clock?: Clock): Promise<void> {
  const source: CloneSource = {
    host: config.peerHost((config.ordinal - 1) as Ordinal),
    port: config.backup.port,
    token: config.backup.token,
  };
  const peer = `${source.host}:${source.port}`;
  const started = Date.now();
  let prepared = false;
  try {
    const result = await retry(
      async (attempt) => {
        const dir = await resetStaging(config.dataDir);
        log.info({ phase: 'stream', peer, attempt }, 'clone attempt');
        return cloneInto(source, dir, extractCommand(config, dir), log, signal);
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
          log.warn({ phase: 'stream', peer, attempt, retry_in_ms: delayMs, err: (err as Error).message }, 'clone attempt failed, retrying'),
        signal,
        clock,
      },
    );
    const seconds = result.durationMs / 1000;
    log.info(
      { phase: 'stream', peer, bytes: result.bytes, duration_ms: result.durationMs, rate_mb_s: +(result.bytes / 1e6 / seconds).toFixed(1) },
      'stream complete and verified',
    );

    const dir = stagingDir(config.dataDir);
    const prepareStarted = Date.now();
    log.info({ phase: 'prepare', tool: config.tools.backup }, 'preparing the clone');
    await spawnOwned({ ...prepareCommand(config, dir), stdin: 'ignore', stdout: 'ignore', signal, killWith: 'SIGKILL', log }).done;
    log.info({ phase: 'prepare', duration_ms: Date.now() - prepareStarted }, 'clone prepared');

    // mbstream does not fsync: get every extracted byte to disk before mysql/ makes it count.
    await spawnOwned({ command: 'sync', args: ['-f', dir], stdin: 'ignore', stdout: 'ignore', signal, killWith: 'SIGTERM', log }).done;
    await markPrepared(config.dataDir);
    prepared = true;
    const { entries } = await promoteStaging(config.dataDir);
    log.info({ phase: 'done', peer, bytes: result.bytes, entries, duration_ms: Date.now() - started }, 'clone accepted into the datadir');
  } catch (err) {
    // A prepared clone is kept so the next run finishes the move; anything earlier is dropped.
    if (!prepared) await removeStaging(config.dataDir);
    throw err;
  }
}
