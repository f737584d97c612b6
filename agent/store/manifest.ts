/**
 * A backup's manifest and its drill verdict as typed values, with pure parse and format.
 * The manifest is the backup's existence: written last, after the data object is complete,
 * and everything a restore checks (SHA-256, sizes, compression) and follows (coordinates) is in
 * it. parseManifest refuses anything that is not a manifest this agent wrote (format 1).
 */
import { ParseError } from '../core/errors.js';
import { type BackupId, isBackupId } from './layout.js';
import type { Compression } from '../stream/compression.js';

export interface Coordinates {
  /** Which info file of the stream speaks for the backup (as a clone's would). */
  readonly from: 'binlog_info' | 'slave_info';
  readonly binlog_file: string | null;
  readonly binlog_pos: number | null;
  readonly gtid: string | null;
}

export interface Manifest {
  readonly format: 1;
  readonly id: BackupId;
  readonly started_at: string;
  readonly finished_at: string;
  readonly source: {
    readonly host: string;
    readonly pod: string | null;
    readonly ordinal: number | null;
    readonly role: 'primary' | 'replica' | null;
    /** BACKUP_SOURCE's value and why this source. */
    readonly choice: string;
    readonly why: string;
  };
  readonly server: { readonly flavor: 'mariadb' | 'mysql' | null; readonly version: string | null; readonly tool_version: string | null };
  readonly data: {
    readonly key: string;
    readonly compression: Compression;
    /** Bytes of the xbstream as the sidecar sent it. */
    readonly raw_bytes: number;
    /** Bytes of the object as stored (compressed). */
    readonly stored_bytes: number;
    /** Of the stored object, hex. */
    readonly sha256: string;
  };
  readonly coordinates: Coordinates;
  /** The stream's info files, verbatim (xtrabackup_info, binlog_info, slave_info). */
  readonly info_files: Readonly<Record<string, string>>;
}

export interface DrillVerdict {
  readonly id: BackupId;
  readonly verified_at: string;
  readonly ok: boolean;
  readonly tables_checked: number;
  readonly rows: number;
  readonly duration_ms: number;
  readonly failure: string | null;
  /** Rows per table (`db.table`), as counted on the restored copy. */
  readonly tables: Readonly<Record<string, number>>;
}

export const formatJson = (value: Manifest | DrillVerdict): string => `${JSON.stringify(value, null, 2)}\n`;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A little reader that names the field that is wrong. */
function fields(source: string) {
  const fail = (path: string, want: string): never => {
    throw new ParseError(`${source}: ${path} is not ${want}`, source);
  };
  const obj = (o: Obj, k: string, path = k): Obj => (isObj(o[k]) ? (o[k] as Obj) : fail(path, 'an object'));
  const str = (o: Obj, k: string, path = k): string => (typeof o[k] === 'string' ? (o[k] as string) : fail(path, 'a string'));
  const strOrNull = (o: Obj, k: string, path = k): string | null => (o[k] === null ? null : str(o, k, path));
  const count = (o: Obj, k: string, path = k): number =>
    Number.isSafeInteger(o[k]) && (o[k] as number) >= 0 ? (o[k] as number) : fail(path, 'a whole number');
  const countOrNull = (o: Obj, k: string, path = k): number | null => (o[k] === null ? null : count(o, k, path));
  const oneOf = <T extends string>(o: Obj, k: string, values: readonly T[], path = k): T =>
    values.includes(o[k] as T) ? (o[k] as T) : fail(path, values.join(' or '));
  const time = (o: Obj, k: string, path = k): string => {
    const t = str(o, k, path);
    return Number.isNaN(Date.parse(t)) ? fail(path, 'a time') : t;
  };
  const id = (o: Obj, k: string): BackupId => {
    const t = str(o, k);
    return isBackupId(t) ? t : fail(k, 'a backup id');
  };
  const json = (text: string): Obj => {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return fail('the text', 'JSON');
    }
    return isObj(v) ? v : fail('the text', 'a JSON object');
  };
  return { fail, obj, str, strOrNull, count, countOrNull, oneOf, time, id, json };
}

export function parseManifest(text: string, source = 'manifest.json'): Manifest {
  const f = fields(source);
  const m = f.json(text);
  if (m.format !== 1) f.fail('format', '1 (a manifest of this agent)');
  const src = f.obj(m, 'source');
  const server = f.obj(m, 'server');
  const data = f.obj(m, 'data');
  const c = f.obj(m, 'coordinates');
  const info = f.obj(m, 'info_files');
  const sha256 = f.str(data, 'sha256', 'data.sha256');
  if (!/^[0-9a-f]{64}$/.test(sha256)) f.fail('data.sha256', 'a SHA-256 in hex');
  const infoFiles: Record<string, string> = {};
  for (const k of Object.keys(info)) infoFiles[k] = f.str(info, k, `info_files.${k}`);
  return {
    format: 1,
    id: f.id(m, 'id'),
    started_at: f.time(m, 'started_at'),
    finished_at: f.time(m, 'finished_at'),
    source: {
      host: f.str(src, 'host', 'source.host'),
      pod: f.strOrNull(src, 'pod', 'source.pod'),
      ordinal: f.countOrNull(src, 'ordinal', 'source.ordinal'),
      role: src.role === null ? null : f.oneOf(src, 'role', ['primary', 'replica'] as const, 'source.role'),
      choice: f.str(src, 'choice', 'source.choice'),
      why: f.str(src, 'why', 'source.why'),
    },
    server: {
      flavor: server.flavor === null ? null : f.oneOf(server, 'flavor', ['mariadb', 'mysql'] as const, 'server.flavor'),
      version: f.strOrNull(server, 'version', 'server.version'),
      tool_version: f.strOrNull(server, 'tool_version', 'server.tool_version'),
    },
    data: {
      key: f.str(data, 'key', 'data.key'),
      compression: f.oneOf(data, 'compression', ['zstd', 'none'] as const, 'data.compression'),
      raw_bytes: f.count(data, 'raw_bytes', 'data.raw_bytes'),
      stored_bytes: f.count(data, 'stored_bytes', 'data.stored_bytes'),
      sha256,
    },
    coordinates: {
      from: f.oneOf(c, 'from', ['binlog_info', 'slave_info'] as const, 'coordinates.from'),
      binlog_file: f.strOrNull(c, 'binlog_file', 'coordinates.binlog_file'),
      binlog_pos: f.countOrNull(c, 'binlog_pos', 'coordinates.binlog_pos'),
      gtid: f.strOrNull(c, 'gtid', 'coordinates.gtid'),
    },
    info_files: infoFiles,
  };
}

export function parseDrillVerdict(text: string, source = 'drill.json'): DrillVerdict {
  const f = fields(source);
  const d = f.json(text);
  if (typeof d.ok !== 'boolean') f.fail('ok', 'true or false');
  const tables = f.obj(d, 'tables');
  const rows: Record<string, number> = {};
  for (const k of Object.keys(tables)) rows[k] = f.count(tables, k, `tables.${k}`);
  return {
    id: f.id(d, 'id'),
    verified_at: f.time(d, 'verified_at'),
    ok: d.ok as boolean,
    tables_checked: f.count(d, 'tables_checked'),
    rows: f.count(d, 'rows'),
    duration_ms: f.count(d, 'duration_ms'),
    failure: f.strOrNull(d, 'failure'),
    tables: rows,
  };
}
