/**
 * What a run may delete, as a pure function of what the store holds. Run only by the run that
 * holds the store's lock, so no other run is writing anything at that moment.
 *
 * | object                                   | deleted when                                      |
 * |------------------------------------------|---------------------------------------------------|
 * | a complete backup (manifest present)      | more than BACKUP_KEEP newer complete ones exist   |
 * | the newest complete backup                | never                                             |
 * | the id this run is writing                | never                                             |
 * | an id without manifest (a killed run's)   | always: it is no backup, only its leftovers       |
 * | anything outside <prefix>mysql-agent/backups/<id>/ | never (groupKeys sees only those)        |
 */
import type { BackupId, StoredBackup } from './layout.js';

export interface RetentionPlan {
  /** Complete backups beyond BACKUP_KEEP, oldest last. */
  readonly expired: readonly StoredBackup[];
  /** Ids without a manifest: a killed run's data object. */
  readonly leftovers: readonly StoredBackup[];
}

/** `backups` newest first (groupKeys' order); `writing`: ids no one may touch now. */
export function planRetention(backups: readonly StoredBackup[], keep: number, writing: readonly BackupId[]): RetentionPlan {
  const protectedIds = new Set(writing);
  const complete = backups.filter((b) => b.hasManifest);
  const newest = complete[0]?.id;
  const expired = complete.slice(Math.max(1, keep)).filter((b) => b.id !== newest && !protectedIds.has(b.id));
  const leftovers = backups.filter((b) => !b.hasManifest && !protectedIds.has(b.id));
  return { expired, leftovers };
}
