/**
 * The durable record of the clone that made this datadir: written by init into the clone
 * before it is moved in (so it arrives with the data, or not at all), read by the sidecar for
 * /status and the clone metrics. init exits after a clone, so this file is how its outcome
 * outlives it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Skipped } from '../init/clone-source.js';
import { writeFileAtomic } from './files.js';

export const CLONE_RECORD = 'mysql-agent-clone.json';

export interface CloneRecord {
  readonly source: {
    readonly host: string;
    readonly port: number;
    readonly ordinal: number | null;
    /** auto, previous, primary, host, or recover (ordinal 0 rebuilt from a replica). */
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
  readonly skipped: readonly Skipped[];
}

export async function writeCloneRecord(dir: string, record: CloneRecord): Promise<void> {
  await writeFileAtomic(join(dir, CLONE_RECORD), `${JSON.stringify(record, null, 2)}\n`);
}

/** A small JSON file from DATA_DIR (or CONF_DIR), or null when absent or unreadable. */
export async function readJsonRecord<T>(dir: string, name: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(join(dir, name), 'utf8')) as T;
  } catch {
    return null;
  }
}

export const readCloneRecord = (dataDir: string) => readJsonRecord<CloneRecord>(dataDir, CLONE_RECORD);
