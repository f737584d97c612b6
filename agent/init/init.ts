/**
 * agent/init/ is the init container: the datadir states, the clone (rounds, one verified
 * attempt, source ranking, peers' /status), the empty-primary guard and the role config.
 *
 * `mysql-agent init`: the init container. Writes the server's config fragments, then makes
 * sure a replica's datadir is initialised, cloning it from a peer when it is empty.
 *
 * | datadir state                         | action                                        |
 * |---------------------------------------|-----------------------------------------------|
 * | has mysql/                            | none (drop a leftover staging directory)      |
 * | prepared staging from a stopped run   | finish moving it in                           |
 * | other files without mysql/            | refuse: not ours to delete (ordinal 0 too)    |
 * | empty (lost+found and staging aside), ordinal 0 | drop a leftover staging directory, then primary-guard.ts: start empty (or restore: RESTORE_FROM), refuse, recover |
 * | empty (lost+found and staging aside)  | clone (or CLONE_SOURCE=backup: restore the newest backup), verify, prepare, move in (mysql/ last) |
 */
import type { Logger } from '../core/log.js';
import type { Clock } from '../core/retry.js';
import { hostOf } from '../core/topology.js';
import { type ClonePlan, cloneDataDir, logRanking } from './clone.js';
import { fixedCandidate, lowerOrdinals, rankCloneSources } from './clone-source.js';
import { foreignDataDirError, inspectDataDir, promoteStaging, removeStaging } from './datadir.js';
import { probePeers, statusOver } from '../cluster/peer-status.js';
import { agentTransport } from '../core/tls.js';
import { guardEmptyPrimary } from './primary-guard.js';
import { ensureRoleConfig } from './role-config.js';
import type { InitConfig } from './settings.js';

/**
 * The store's code (the AWS SDK: ~10 MB of RSS) is loaded only by an init that restores or seeds
 * from a backup; a clone stays under the 100 MB each agent process is held to.
 */
const restoreModule = () => import('./restore.js');

export async function runInit(config: InitConfig, log: Logger, signal: AbortSignal, clock?: Clock): Promise<void> {
  const { files } = await ensureRoleConfig(config);
  log.info({ phase: 'config', files, server_id: config.serverId }, 'server config written');
  const state = await inspectDataDir(config.dataDir);
  const primary = config.role === 'primary';
  switch (state.kind) {
    case 'initialised':
      if (state.leftoverStaging) await removeStaging(config.dataDir);
      log.info({ phase: 'clone' }, primary ? 'primary: datadir already initialised' : 'datadir already initialised: no clone');
      return;
    case 'foreign':
      // At ordinal 0 too: a recovery clone moved in among them would collide (ENOTEMPTY) or
      // overwrite them, and MariaDB's entrypoint would initialise mysql/ beside them.
      throw foreignDataDirError(config.dataDir, state.entries);
    case 'prepared-staging': {
      const { entries } = await promoteStaging(config.dataDir);
      log.info({ phase: 'move', entries }, `finished moving a prepared ${primary ? 'recovery ' : ''}clone left by an earlier run`);
      return;
    }
    case 'empty':
      // An interrupted clone is of no use to any path, and MySQL's --initialize refuses a
      // datadir that holds it.
      if (state.leftoverStaging) await removeInterruptedClone(config.dataDir, log);
      if (primary) {
        await guardEmptyPrimary(
          config,
          log,
          (plan) => cloneDataDir(config, log, signal, plan, clock),
          config.restoreFrom === null ? undefined : async () => (await restoreModule()).restorePrimary(config, log, signal),
        );
        return;
      }
      if (config.cloneSource.choice.kind === 'backup') {
        const reason = await (await restoreModule()).seedReplica(config, log, signal);
        if (reason === null) return;
        log.warn({ phase: 'source', reason }, `CLONE_SOURCE=backup: cloning from a peer instead: ${reason}`);
      }
      await cloneDataDir(config, log, signal, replicaClonePlan(config, log), clock);
  }
}

async function removeInterruptedClone(dataDir: string, log: Logger): Promise<void> {
  log.warn({ phase: 'clone' }, 'removing the staging directory of an interrupted clone');
  await removeStaging(dataDir);
}

/** CLONE_SOURCE on a replica: a fixed peer, or the ranking of the lower ordinals' answers. */
function replicaClonePlan(config: InitConfig, log: Logger): ClonePlan {
  const fixed = fixedCandidate(config.cloneSource.choice, config.ordinal, (n) => hostOf(config.peerHosts, n));
  return {
    choice: config.cloneSource.choice.kind,
    rank: async () => {
      if (fixed) return { candidates: [fixed], skipped: [] };
      const peers = lowerOrdinals(config.ordinal, (n) => hostOf(config.peerHosts, n));
      const ranking = rankCloneSources(await probePeers(peers, config.backup.port, config.peers.statusTimeoutMs, statusOver(agentTransport(config.tls))), config.cloneSource.maxLagSeconds);
      logRanking(log, ranking);
      return ranking;
    },
  };
}
