/**
 * What the sidecar does with a replica's replication when it starts, decided from the record
 * it keeps in DATA_DIR, the server's own state and whether DATA_DIR holds a clone's info files.
 * Shared by the sidecar, which does it, and `plan`, which says it.
 *
 * | record   | server configured | info files | step    | because |
 * |----------|-------------------|------------|---------|---------|
 * | applied  | any               | any        | keep    | done once; the threads are started if stopped (the role configs have skip-slave-start) |
 * | applying | yes               | any        | adopt   | our CHANGE MASTER ran, the `applied` record did not follow |
 * | applying | no                | yes        | apply   | stopped before our CHANGE MASTER: nothing replicated yet, so the plan again |
 * | none     | any               | yes        | apply   | a fresh clone: a configured server there is the donor's channel, cleared first |
 * | none     | yes               | none       | adopt   | set up by other means (the tutorial's scripts delete the info files) |
 * | none or applying | no        | none       | blocked | nothing to follow |
 *
 * `applying` is written only after the inherited channel is cleared, so a configured server
 * with that record is ours, and one without a record is not.
 */
import type { ReplicationState } from '../core/records.js';
import { BINLOG_INFO, SLAVE_INFO } from './clone-info.js';

export type SetupStep = 'keep' | 'adopt' | 'apply' | 'blocked';

export function setupStep(recorded: ReplicationState, configured: boolean, hasCloneInfo: boolean): SetupStep {
  if (recorded === 'applied') return 'keep';
  if (recorded === 'applying' && configured) return 'adopt';
  if (hasCloneInfo) return 'apply';
  return recorded === 'none' && configured ? 'adopt' : 'blocked';
}

/** Why there is nothing to apply. */
export const noCloneReason = (dataDir: string) =>
  `no ${SLAVE_INFO[1]} or ${BINLOG_INFO[1]} in DATA_DIR=${dataDir} and replication is not configured: this replica was not cloned by mysql-agent init`;
