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
import type { ReplicationState, ReplicationTlsRecord } from '../core/records.js';
import { BINLOG_INFO, SLAVE_INFO } from './clone-info.js';
import type { ReplicaStatus } from './db.js';
import { type ReplicationTls, tlsApplied } from './replication-sql.js';

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

/**
 * A replica configured earlier and REPLICATION_TLS, decided from the TLS record in DATA_DIR and
 * the channel's SSL settings:
 *
 * | TLS record                     | channel has the mode | step   |
 * |--------------------------------|----------------------|--------|
 * | none, REPLICATION_TLS=off      | any                  | keep (never touched: as before REPLICATION_TLS) |
 * | applied, this mode and CA file | any                  | keep (done once; a later change by hand is the operator's) |
 * | other                          | yes                  | record (`found-on-server`) |
 * | other                          | no                   | apply (the SSL options only, `applying` → `applied`) |
 *
 * Applying again after a stop between the statements and the record is harmless: the options
 * are the same and no position is touched.
 */
export type TlsStep = 'keep' | 'record' | 'apply';

export function tlsStep(record: ReplicationTlsRecord | null, ssl: ReplicaStatus['ssl'], tls: ReplicationTls): TlsStep {
  if (record === null && tls.mode === 'off') return 'keep';
  if (record?.state === 'applied' && record.mode === tls.mode && record.ca_file === tls.caFile) return 'keep';
  return tlsApplied(ssl, tls) ? 'record' : 'apply';
}
