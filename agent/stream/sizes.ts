/**
 * Sizes on disk around a backup: what a backup of a datadir will roughly weigh (announced by
 * the sender so the receiver can refuse up front), and the room left to receive one.
 */
import { lstat, readdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';

/** Top-level files the backup tool copies; binlogs, relay logs and temp files stay behind. */
const COPIED_AT_TOP = /^(ibdata\d+|undo\d+|aria_log[._].*|ib_logfile\d+)$/;

async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await treeBytes(path);
    else if (entry.isFile()) total += (await lstat(path)).size;
  }
  return total;
}

/**
 * What a backup of this datadir will roughly weigh: database directories plus the shared
 * tablespaces and logs the tool copies. Announced to the receiver so it can refuse up front
 * when its volume is too small, instead of filling it.
 */
export async function estimateBackupBytes(dataDir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dataDir, { withFileTypes: true })) {
    const path = join(dataDir, entry.name);
    if (entry.isDirectory() && !entry.name.startsWith('.') && !entry.name.startsWith('#innodb_temp') && entry.name !== 'lost+found') {
      total += await treeBytes(path);
    } else if (entry.isFile() && COPIED_AT_TOP.test(entry.name)) {
      total += (await lstat(path)).size;
    }
  }
  return total;
}

/** Bytes an unprivileged writer can still put on the filesystem holding `path`. */
export async function freeBytes(path: string): Promise<number> {
  const fs = await statfs(path);
  return fs.bavail * fs.bsize;
}
