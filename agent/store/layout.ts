/**
 * Where a backup's objects live under the cluster's prefix, and how ids sort by time:
 *
 *   <prefix>mysql-agent/backups/<id>/data.xbstream[.zst]   the stream, as uploaded (multipart)
 *   <prefix>mysql-agent/backups/<id>/manifest.json         written LAST: without it there is no backup
 *   <prefix>mysql-agent/backups/<id>/drill.json            the last restore drill's verdict
 *   <prefix>mysql-agent/lock.json                          held by the one run that writes
 *
 * An id is the UTC start time to the millisecond plus 6 random hex digits,
 * `20261201T101530.123Z-3fa9c1`. Milliseconds because runs follow each other as soon as the lock
 * is free: two backups of a small database start within one second, and ids of one second would
 * sort by their random part. Ids of earlier builds (to the second, `20261201T101530Z-3fa9c1`)
 * are still read; ids sort by their time, then by text. Pure functions only.
 */
import type { Compression } from '../stream/compression.js';

declare const backupIdBrand: unique symbol;
export type BackupId = string & { readonly [backupIdBrand]: true };

const ID = /^[0-9]{8}T[0-9]{6}(\.[0-9]{3})?Z-[0-9a-f]{6}$/;
export const ROOT = 'mysql-agent/';
const BACKUPS = `${ROOT}backups/`;

export const isBackupId = (t: string): t is BackupId => ID.test(t);

/** A new id for a backup started at `now`. */
export function newBackupId(now: Date, random: () => number = Math.random): BackupId {
  const stamp = now.toISOString().replace(/[-:]/g, '');
  const suffix = Math.floor(random() * 0x1000000).toString(16).padStart(6, '0');
  return `${stamp}-${suffix}` as BackupId;
}

/** When the backup with this id started. */
export function idTime(id: BackupId): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\.\d{3})?Z/.exec(id)!;
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[7] ?? ''}Z`);
}

/** Newest first: by start time, then by text (an id of one second of an earlier build against ids of that second). */
export const newestFirst = (a: BackupId, b: BackupId): number => idTime(b).getTime() - idTime(a).getTime() || (a < b ? 1 : a > b ? -1 : 0);

export const backupsPrefix = (prefix: string) => `${prefix}${BACKUPS}`;
export const backupDir = (prefix: string, id: BackupId) => `${backupsPrefix(prefix)}${id}/`;
export const dataKey = (prefix: string, id: BackupId, compression: Compression) =>
  `${backupDir(prefix, id)}data.xbstream${compression === 'zstd' ? '.zst' : ''}`;
export const manifestKey = (prefix: string, id: BackupId) => `${backupDir(prefix, id)}manifest.json`;
export const drillKey = (prefix: string, id: BackupId) => `${backupDir(prefix, id)}drill.json`;
export const lockKey = (prefix: string) => `${prefix}${ROOT}lock.json`;

/** What the store holds for one id. */
export interface StoredBackup {
  readonly id: BackupId;
  readonly hasManifest: boolean;
  readonly hasDrill: boolean;
  /** Every key under the id's folder (data, manifest, drill, anything else left there). */
  readonly keys: readonly string[];
}

/** Groups the keys listed under backupsPrefix by id, newest first; keys of no backup id are ignored. */
export function groupKeys(prefix: string, keys: readonly string[]): StoredBackup[] {
  const base = backupsPrefix(prefix);
  const byId = new Map<BackupId, string[]>();
  for (const key of keys) {
    if (!key.startsWith(base)) continue;
    const id = key.slice(base.length).split('/')[0]!;
    if (!isBackupId(id)) continue;
    byId.set(id, [...(byId.get(id) ?? []), key]);
  }
  return [...byId.entries()]
    .sort(([a], [b]) => newestFirst(a, b))
    .map(([id, ks]) => ({ id, keys: ks, hasManifest: ks.includes(manifestKey(prefix, id)), hasDrill: ks.includes(drillKey(prefix, id)) }));
}
