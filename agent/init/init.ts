/**
 * agent/init/ is the init container: the datadir states, the clone (rounds, one verified
 * attempt, source ranking, peers' /status), the empty-primary guard and the role config.
 *
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
import type { Logger } from '../core/log.js';
import type { Clock } from '../core/retry.js';
import { hostOf } from '../core/topology.js';
import { type ClonePlan, cloneDataDir, logRanking } from './clone.js';
import { fixedCandidate, lowerOrdinals, rankCloneSources } from './clone-source.js';
import { foreignDataDirError, inspectDataDir, promoteStaging, removeStaging } from './datadir.js';
import { probePeers } from '../cluster/peer-status.js';
import { guardEmptyPrimary } from './primary-guard.js';
import { ensureRoleConfig } from './role-config.js';
import type { InitConfig } from './settings.js';

export async function runInit(config: InitConfig, log: Logger, signal: AbortSignal, clock?: Clock): Promise<void> {
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

/** CLONE_SOURCE on a replica: a fixed peer, or the ranking of the lower ordinals' answers. */
function replicaClonePlan(config: InitConfig, log: Logger): ClonePlan {
  const fixed = fixedCandidate(config.cloneSource.choice, config.ordinal, (n) => hostOf(config.peerHosts, n));
  return {
    choice: config.cloneSource.choice.kind,
    rank: async () => {
      if (fixed) return { candidates: [fixed], skipped: [] };
      const peers = lowerOrdinals(config.ordinal, (n) => hostOf(config.peerHosts, n));
      const ranking = rankCloneSources(await probePeers(peers, config.backup.port, config.peers.statusTimeoutMs), config.cloneSource.maxLagSeconds);
      logRanking(log, ranking);
      return ranking;
    },
  };
}
