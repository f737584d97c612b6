/**
 * Reading a clone's info files from a directory (a datadir, a staging directory or a fixture):
 * which file speaks for the clone, and its coordinates, parsed by info-files.ts.
 */
import { readFirst } from '../core/files.js';
import { type CloneCoordinates, parseBinlogInfo, parseSlaveInfo } from './info-files.js';

/** Info file names, newest spelling first (MariaDB 11.1+ renamed them; the old ones are the fallback). */
export const SLAVE_INFO = ['mariadb_backup_slave_info', 'xtrabackup_slave_info'] as const;
export const BINLOG_INFO = ['mariadb_backup_binlog_info', 'xtrabackup_binlog_info'] as const;

export interface CloneInfo {
  readonly file: string;
  readonly text: string;
  readonly coordinates: CloneCoordinates;
}

/**
 * The clone's coordinates: slave_info wins (a GTID replica with log-bin also leaves a
 * binlog_info of its own binlog, useless for following the primary), else binlog_info; null
 * when there is neither. Throws ParseError when the file that speaks does not parse.
 */
export async function readCloneCoordinates(dir: string): Promise<CloneInfo | null> {
  const slave = await readFirst(dir, SLAVE_INFO);
  if (slave && slave.text.trim() !== '') return { file: slave.name, text: slave.text, coordinates: parseSlaveInfo(slave.text, slave.name) };
  const binlog = await readFirst(dir, BINLOG_INFO);
  if (binlog) return { file: binlog.name, text: binlog.text, coordinates: parseBinlogInfo(binlog.text, binlog.name) };
  return null;
}
