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
  return chooseCoordinates(await readFirst(dir, SLAVE_INFO), await readFirst(dir, BINLOG_INFO));
}

/** The same choice over info files already in hand (a stream's, as a backup reads them). */
export function coordinatesOfFiles(files: ReadonlyMap<string, string>): CloneInfo | null {
  const first = (names: readonly string[]) => {
    const name = names.find((n) => files.has(n));
    return name === undefined ? null : { name, text: files.get(name)! };
  };
  return chooseCoordinates(first(SLAVE_INFO), first(BINLOG_INFO));
}

type InfoFile = { readonly name: string; readonly text: string } | null;

function chooseCoordinates(slave: InfoFile, binlog: InfoFile): CloneInfo | null {
  if (slave && slave.text.trim() !== '') return { file: slave.name, text: slave.text, coordinates: parseSlaveInfo(slave.text, slave.name) };
  if (binlog) return { file: binlog.name, text: binlog.text, coordinates: parseBinlogInfo(binlog.text, binlog.name) };
  return null;
}
