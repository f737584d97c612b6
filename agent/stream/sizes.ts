/**
 * Sizes on disk around a backup: what a backup of a datadir will roughly weigh (announced by
 * the sender so the receiver can refuse up front), and the room left to receive one.
 */
import type { Dirent } from 'node:fs';
import { lstat, readdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';

/** Top-level files the backup tool copies; binlogs, relay logs and temp files stay behind. */
const COPIED_AT_TOP = /^(ibdata\d+|undo\d+|aria_log[._].*|ib_logfile\d+)$/;

const sum = (sizes: readonly number[]) => sizes.reduce((a, b) => a + b, 0);

/**
 * The bytes of the files under `dir` that `counted` keeps (at this level; everything below it),
 * every size asked for at once, not one after another: a table's files are one stat each (a
 * 217-entry datadir here: 30 -> 13 ms).
 */
async function treeBytes(dir: string, counted: (entry: Dirent) => boolean = () => true): Promise<number> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter(counted);
  return sum(
    await Promise.all(
      entries.map(async (e) => {
        const path = join(dir, e.name);
        return e.isDirectory() ? treeBytes(path) : e.isFile() ? (await lstat(path)).size : 0;
      }),
    ),
  );
}

/** At the top of a datadir: database directories, and the shared tablespaces and logs. */
const copiedByTheTool = (e: Dirent) =>
  e.isDirectory() ? !e.name.startsWith('.') && !e.name.startsWith('#innodb_temp') && e.name !== 'lost+found' : e.isFile() && COPIED_AT_TOP.test(e.name);

/**
 * What a backup of this datadir will roughly weigh: database directories plus the shared
 * tablespaces and logs the tool copies. Announced to the receiver so it can refuse up front
 * when its volume is too small, instead of filling it.
 */
export const estimateBackupBytes = (dataDir: string): Promise<number> => treeBytes(dataDir, copiedByTheTool);

/** Bytes as people read them in a message: `51.3 MB`. */
export const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** Bytes an unprivileged writer can still put on the filesystem holding `path`. */
export async function freeBytes(path: string): Promise<number> {
  const fs = await statfs(path);
  return fs.bavail * fs.bsize;
}

const MiB = 1024 * 1024;

/**
 * Room asked for beyond the peer's estimate before a clone starts: `--prepare` applies the redo
 * of what was written during the backup before it truncates that redo, and pages added then
 * extend tablespaces (measured here on MariaDB 10.11: a 167 MB stream taken under inserts grew
 * a table from 33 to 143 MB in prepare); the server's first start adds its temporary tablespace
 * and logs. 10% of the estimate, at least 64 MiB.
 */
export function prepareMargin(estimatedBytes: number): number {
  return Math.max(Math.ceil(estimatedBytes * 0.1), 64 * MiB);
}

/** What tools and Node print when a write found no room (ENOSPC is errno 28). */
export const NO_SPACE = /No space left on device|ENOSPC|Errcode: 28\b|(error|errno)( number)?:? 28\b/i;

/** A filesystem with less than this free right after a failed write was filled up by it. */
const FULL_BELOW_BYTES = MiB;

/**
 * Whether a failure was its filesystem filling up: one of the messages (the error, the tool's
 * lines) says so, or almost nothing is left free. Tools do not always say it where it can be
 * seen: mariadb-backup's prepare reports error 28 and then aborts with a page of assertion text.
 */
export function filledUp(messages: readonly (string | null)[], freeBytesNow: number): boolean {
  return freeBytesNow < FULL_BELOW_BYTES || messages.some((m) => m !== null && NO_SPACE.test(m));
}

/** A progress line's numbers: bytes, rate, and against the sender's estimate, percent and ETA. */
export interface Progress {
  readonly bytes: number;
  readonly rate_mb_s: number;
  /** null without an estimate; never above 100: past the estimate it stays 100 and `estimate_short` says so. */
  readonly percent: number | null;
  readonly eta_s: number | null;
  readonly estimate_short: boolean;
}

export function progress(bytes: number, estimatedBytes: number | null, elapsedMs: number): Progress {
  const rate = elapsedMs > 0 ? bytes / (elapsedMs / 1000) : 0;
  const known = estimatedBytes !== null && Number.isFinite(estimatedBytes) && estimatedBytes > 0;
  const short = known && bytes > estimatedBytes;
  return {
    bytes,
    rate_mb_s: +(rate / 1e6).toFixed(1),
    percent: known ? Math.min(100, +((bytes / estimatedBytes) * 100).toFixed(1)) : null,
    // Past a short estimate the end is not known: no ETA rather than a negative one.
    eta_s: known && !short && rate > 0 ? Math.round((estimatedBytes - bytes) / rate) : null,
    estimate_short: short,
  };
}
