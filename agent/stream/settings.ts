/**
 * The settings of the backup stream: the port the sidecar serves it on and init fetches it
 * from, the shared token, and the backup and stream tools with their extra arguments.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { type ConfigSources, type Setting, type SettingsReader, oneOf, text, wholeNumber } from '../core/settings.js';

export const BACKUP_PORT = wholeNumber('BACKUP_PORT', 'port the sidecar serves on', 3307, 1, 65535);
export const BACKUP_AUTH = oneOf('BACKUP_AUTH', 'token, or none to serve backups to anyone (warns)', ['token', 'none'], 'token');
export const BACKUP_TOKEN: Setting<string | null> = {
  name: 'BACKUP_TOKEN',
  help: 'shared secret for GET /backup (at least 16 characters)',
  fallback: null,
  parse: (t) => {
    if (!/^[\x21-\x7e]{16,512}$/.test(t)) {
      throw new ConfigError('BACKUP_TOKEN is invalid: expected 16-512 printable characters without spaces (e.g. `openssl rand -hex 32`)');
    }
    return t;
  },
};
export const XTRABACKUP_BIN = text('XTRABACKUP_BIN', 'backup tool', '', '(xtrabackup, else mariadb-backup, on PATH)');
export const XBSTREAM_BIN = text('XBSTREAM_BIN', 'stream tool', '', '(xbstream, else mbstream, on PATH)');
/** The restore drill's throwaway server (verify-backup). */
export const MYSQLD_BIN = text('MYSQLD_BIN', 'the server the restore drill starts', '', '(mysqld, else mariadbd, on PATH)');
/** A point-in-time restore's replay: the binlog client reads the archived files, the client applies them. */
export const MYSQLBINLOG_BIN = text('MYSQLBINLOG_BIN', 'binary log reader a point-in-time restore replays with', '', '(mariadb-binlog, else mysqlbinlog, on PATH)');
export const ZSTD_BIN = text('ZSTD_BIN', 'zstd: init decompresses a compressed clone or restore with it, child to child; the sidecar compresses a backup asked for zstd with it', '', '(zstd on PATH; without it init decompresses, slower, and the sidecar serves backups raw)');
export const MYSQL_BIN = text('MYSQL_BIN', 'client a point-in-time restore applies the binary logs with', '', '(mariadb, else mysql, on PATH)');
export const XTRABACKUP_ARGS: Setting<readonly string[]> = {
  name: 'XTRABACKUP_ARGS',
  help: 'extra arguments for the backup tool, space-separated (e.g. --throttle=20)',
  fallback: [],
  parse: (t) => {
    const args = t.split(/\s+/).filter(Boolean);
    for (const a of args) {
      if (!a.startsWith('--')) throw new ConfigError(`XTRABACKUP_ARGS has "${a}": expected options of the form --name or --name=value`);
    }
    return args;
  },
};

/**
 * BACKUP_AUTH and BACKUP_TOKEN: the token, or null with BACKUP_AUTH=none. `needed`: this
 * command serves or fetches backups now (the sidecar always; init only when it clones).
 */
export function readToken(read: SettingsReader, needed: boolean): string | null {
  const auth = read.get(BACKUP_AUTH);
  const token = read.get(BACKUP_TOKEN);
  if (auth === 'none') return null;
  if (needed && token === null && !read.isSet(BACKUP_TOKEN)) {
    read.problem(
      'BACKUP_TOKEN is not set: set it to the same secret on every pod (e.g. `openssl rand -hex 32`), or set BACKUP_AUTH=none to run without authentication',
    );
  }
  return token;
}

function defaultIsExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The tools, each a setting and the names looked up on PATH, preferred first. */
export const TOOLS = {
  backup: { setting: XTRABACKUP_BIN, candidates: ['xtrabackup', 'mariadb-backup'] },
  stream: { setting: XBSTREAM_BIN, candidates: ['xbstream', 'mbstream'] },
  server: { setting: MYSQLD_BIN, candidates: ['mysqld', 'mariadbd'] },
  // Point-in-time restores read MariaDB binary logs (agent/mysql/binlog.ts): MariaDB's tools first.
  binlog: { setting: MYSQLBINLOG_BIN, candidates: ['mariadb-binlog', 'mysqlbinlog'] },
  client: { setting: MYSQL_BIN, candidates: ['mariadb', 'mysql'] },
  zstd: { setting: ZSTD_BIN, candidates: ['zstd'] },
} as const;

/**
 * The tool its setting names (a path, or a name looked up on PATH), else the first candidate
 * found on PATH, else '' when this command does not `need` it now.
 */
export function findTool(read: SettingsReader, sources: ConfigSources, kind: keyof typeof TOOLS, needed: boolean): string {
  const { setting, candidates } = TOOLS[kind];
  const isExecutable = sources.isExecutable ?? defaultIsExecutable;
  const dirs = (sources.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).filter(Boolean);
  const lookup = (names: readonly string[]): string | undefined => {
    for (const n of names) for (const d of dirs) if (isExecutable(join(d, n))) return join(d, n);
    return undefined;
  };
  const explicit = read.get(setting);
  if (explicit) {
    const found = explicit.includes('/') ? (isExecutable(explicit) ? explicit : undefined) : lookup([explicit]);
    if (!found) read.problem(`${setting.name}="${explicit}" is not an executable file: install it or fix ${setting.name}`);
    return found ?? '';
  }
  const found = lookup(candidates) ?? '';
  if (needed && !found) read.problem(`no ${kind} tool found: install ${candidates.join(' or ')} on PATH, or set ${setting.name}`);
  return found;
}
