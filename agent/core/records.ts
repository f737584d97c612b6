/**
 * The durable records the agent leaves beside the data, shared by the side that writes them
 * and the side that reads them: their names, their shapes and their readers. init exits after
 * its work, so these files are how its outcome outlives it; the sidecar's records say what was
 * done once and must never be done again.
 *
 * | record                              | where    | written by            | read by                 |
 * |-------------------------------------|----------|-----------------------|-------------------------|
 * | mysql-agent-clone.json              | DATA_DIR | init, into the clone  | sidecar (/status, metrics) |
 * | mysql-agent-primary-start.json      | CONF_DIR | init at ordinal 0     | sidecar (/status)       |
 * | mysql-agent-primary-recovery.json   | DATA_DIR | init (recover), then the sidecar (`applying` → `applied`) | sidecar |
 * | mysql-agent-replication.json        | DATA_DIR | sidecar (`applying` → `applied`) | sidecar, plan |
 * | mysql-agent-replication-tls.json    | DATA_DIR | sidecar (`applying` → `applied`) | sidecar, plan |
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './files.js';

export const CLONE_RECORD = 'mysql-agent-clone.json';
/** Never in DATA_DIR: MySQL's --initialize refuses a non-empty one. */
export const PRIMARY_START_RECORD = 'mysql-agent-primary-start.json';
/** Written into the recovered clone: the GTID state the new primary must continue from. */
export const RECOVERY_RECORD = 'mysql-agent-primary-recovery.json';
/** Kept in the datadir so it lives and dies with the data it describes. */
export const REPLICATION_RECORD = 'mysql-agent-replication.json';
/** The SSL options given to a replica configured earlier (REPLICATION_TLS), once. */
export const REPLICATION_TLS_RECORD = 'mysql-agent-replication-tls.json';

/** A peer passed over as a clone source, and why. */
export interface SkippedPeer {
  readonly ordinal: number;
  readonly host: string;
  readonly reason: string;
}

export interface CloneRecord {
  readonly source: {
    /** A peer's host, or the backup's manifest key (`s3://bucket/…/manifest.json`) for a restore. */
    readonly host: string;
    /** null: restored from the object store. */
    readonly port: number | null;
    readonly ordinal: number | null;
    /** auto, previous, primary, host, recover (ordinal 0 rebuilt from a replica), restore or backup (from the object store). */
    readonly choice: string;
    readonly why: string;
  };
  readonly bytes: number;
  /** Time spent streaming (the accepted attempt). */
  readonly stream_duration_ms: number;
  /** From the first attempt to the prepared clone. */
  readonly duration_ms: number;
  readonly finished_at: string;
  /** Peers passed over in the round that succeeded, with the reasons. */
  readonly skipped: readonly SkippedPeer[];
}

export interface RecoveryRecord {
  /** recover: rebuilt from a replica; restore: from a backup in the object store (RESTORE_FROM). */
  readonly decision: 'recover' | 'restore';
  readonly reason: string;
  readonly source: { readonly host: string; readonly ordinal: number | null };
  /** The GTID state the new primary continues from. */
  readonly gtid: string;
  readonly behind: readonly { readonly ordinal: number; readonly host: string; readonly gtid: string }[];
  /** null until the sidecar starts setting the server's GTID state; `applying` while it does. */
  readonly continuity: {
    readonly how: 'applying' | 'applied' | 'found-on-server';
    readonly statements: readonly string[];
    readonly at: string;
  } | null;
}

/** Writes a record as indented JSON, atomically. */
export async function writeRecord(dir: string, name: string, record: object): Promise<void> {
  await writeFileAtomic(join(dir, name), `${JSON.stringify(record, null, 2)}\n`);
}

/** A small JSON file from DATA_DIR (or CONF_DIR), or null when absent or unreadable. */
export async function readJsonRecord<T>(dir: string, name: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(join(dir, name), 'utf8')) as T;
  } catch {
    return null;
  }
}

export const writeCloneRecord = (dir: string, record: CloneRecord) => writeRecord(dir, CLONE_RECORD, record);
export const readCloneRecord = (dataDir: string) => readJsonRecord<CloneRecord>(dataDir, CLONE_RECORD);
export const readRecoveryRecord = (dataDir: string) => readJsonRecord<RecoveryRecord>(dataDir, RECOVERY_RECORD);

/**
 * How far the sidecar got with this datadir's replication: `applying` is written once the
 * clone's inherited configuration is cleared, before our statements; `applied` after them, or
 * when a server set up before was adopted. Records of earlier agents have no `state`: applied.
 */
export type ReplicationState = 'none' | 'applying' | 'applied';

export interface ReplicationRecord {
  readonly state: Exclude<ReplicationState, 'none'>;
  /** `applied`: our statements ran; `found-on-server`: the server was already configured. */
  readonly how?: 'applied' | 'found-on-server';
  readonly at: string;
  readonly [detail: string]: unknown;
}

/** The replication record's state; a record that cannot be read counts as applied (never applied twice). */
export async function readReplicationState(dataDir: string): Promise<ReplicationState> {
  let text: string;
  try {
    text = await readFile(join(dataDir, REPLICATION_RECORD), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw err;
  }
  try {
    return (JSON.parse(text) as Partial<ReplicationRecord>).state === 'applying' ? 'applying' : 'applied';
  } catch {
    return 'applied';
  }
}

export interface ReplicationTlsRecord {
  readonly state: 'applying' | 'applied';
  /** `applied`: our statements ran; `found-on-server`: the channel already had these settings. */
  readonly how?: 'applied' | 'found-on-server';
  /** REPLICATION_TLS and the CA file it was applied with. */
  readonly mode: string;
  readonly ca_file: string | null;
  readonly statements?: readonly string[];
  readonly at: string;
}

/** null when absent or unreadable: then the channel's settings decide, and applying them again is harmless. */
export const readReplicationTlsRecord = (dataDir: string) => readJsonRecord<ReplicationTlsRecord>(dataDir, REPLICATION_TLS_RECORD);
