/**
 * The binary log archive under the cluster's prefix, and what the archiver decides. Pure.
 *
 *   <prefix>mysql-agent/binlogs/<server_id>/<name>-<sha256[0,16]>        the file, byte for byte
 *   <prefix>mysql-agent/binlogs/<server_id>/<name>-<sha256[0,16]>.json   its index record, written LAST
 *
 * Why the key holds the content's hash: a closed binary log never changes, so the same file
 * always gets the same key (an upload killed half-way is redone onto it, never beside it), and a
 * rebuilt or failed-over primary whose names start again at mysql-bin.000001, even under the same
 * server_id, can never overwrite another server's file: different bytes, different key.
 */
import { ParseError } from '../core/errors.js';
import type { BinlogFileSummary } from '../mysql/binlog.js';
import { compareGtid, gtidCovers } from '../mysql/gtid.js';
import { ROOT } from './layout.js';

export const binlogsPrefix = (prefix: string) => `${prefix}${ROOT}binlogs/`;
const NAME = /^[A-Za-z0-9_.-]+\.[0-9]{6,}$/;
const INDEX_SUFFIX = '.json';

export const binlogDataKey = (prefix: string, serverId: number, name: string, sha256: string) => `${binlogsPrefix(prefix)}${serverId}/${name}-${sha256.slice(0, 16)}`;
export const binlogIndexKey = (prefix: string, serverId: number, name: string, sha256: string) => `${binlogDataKey(prefix, serverId, name, sha256)}${INDEX_SUFFIX}`;

/** What an index key says without reading it: whose file, which name. */
export interface ArchivedKey {
  readonly key: string;
  readonly serverId: number;
  readonly name: string;
}

/** The index keys among listed keys (data objects and anything else are left out). */
export function indexKeys(prefix: string, keys: readonly string[]): ArchivedKey[] {
  const base = binlogsPrefix(prefix);
  const out: ArchivedKey[] = [];
  for (const key of keys) {
    const m = /^([0-9]+)\/(.+)-[0-9a-f]{16}\.json$/.exec(key.startsWith(base) ? key.slice(base.length) : '');
    if (m && NAME.test(m[2]!)) out.push({ key, serverId: Number(m[1]), name: m[2]! });
  }
  return out;
}

/** One archived file: its summary, where its bytes are, when it was archived. */
export interface BinlogIndexRecord extends BinlogFileSummary {
  readonly format: 1;
  readonly key: string;
  readonly archived_at: string;
}

export const formatIndexRecord = (r: BinlogIndexRecord) => `${JSON.stringify(r, null, 2)}\n`;

/** Refuses anything that is not an index record this agent wrote. */
export function parseIndexRecord(text: string, source: string): BinlogIndexRecord {
  const fail = (why: string): never => {
    throw new ParseError(`${source}: ${why}`, source);
  };
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return fail('not JSON');
  }
  if (typeof v !== 'object' || v === null || v.format !== 1) fail('not a binlog index record of format 1');
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : fail(`${k} is not a string`));
  const strOrNull = (k: string) => (v[k] === null ? null : str(k));
  const count = (k: string) => (Number.isSafeInteger(v[k]) && (v[k] as number) >= 0 ? (v[k] as number) : fail(`${k} is not a whole number`));
  const countOrNull = (k: string) => (v[k] === null ? null : count(k));
  const sha256 = str('sha256');
  if (!/^[0-9a-f]{64}$/.test(sha256)) fail('sha256 is not 64 hex digits');
  return {
    format: 1,
    key: str('key'),
    archived_at: str('archived_at'),
    name: str('name'),
    serverId: count('serverId'),
    startState: str('startState'),
    endState: str('endState'),
    firstGtid: strOrNull('firstGtid'),
    lastGtid: strOrNull('lastGtid'),
    firstEventTime: countOrNull('firstEventTime'),
    lastEventTime: countOrNull('lastEventTime'),
    closedAt: countOrNull('closedAt'),
    transactions: count('transactions'),
    size: count('size'),
    sha256,
  };
}

/**
 * The archive in the order a restore walks it: by the GTID state each file starts from (a file
 * starts where the one before it ended), then by when it was archived. Files of servers of one
 * history sort into one chain; planPointInTime then checks each link.
 */
export function archiveOrder(records: readonly BinlogIndexRecord[]): BinlogIndexRecord[] {
  return [...records].sort((a, b) => {
    if (a.startState !== b.startState) {
      if (gtidCovers(b.startState, a.startState)) return -1;
      if (gtidCovers(a.startState, b.startState)) return 1;
    }
    return a.archived_at < b.archived_at ? -1 : a.archived_at > b.archived_at ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

/**
 * The one history a restore from `from` (a backup's GTID) follows through the archive, in
 * order: from the first file that goes past `from`, each next file is one starting exactly where
 * the last ended (a restored or failed-over primary's files branch off elsewhere in the same
 * prefix, and are left out); where none does, the next file starting beyond it, so the gap is
 * there for planPointInTime to name.
 */
export function archiveChain(records: readonly BinlogIndexRecord[], from: string): BinlogIndexRecord[] {
  const sorted = archiveOrder(records);
  const first = sorted.find((r) => compareGtid(r.endState, from) === 'ahead');
  if (!first) return sorted;
  const used = new Set([first]);
  const chain = [first];
  for (let cur = first; ; ) {
    const next =
      sorted.find((r) => !used.has(r) && compareGtid(r.startState, cur.endState) === 'equal') ??
      sorted.find((r) => !used.has(r) && compareGtid(r.startState, cur.endState) === 'ahead');
    if (!next) return chain;
    used.add(next);
    chain.push(next);
    cur = next;
  }
}

/** A binary log as the server lists it (SHOW BINARY LOGS), with its first events read from the datadir. */
export interface ServerBinlog {
  readonly name: string;
  readonly size: number;
}

/** A file this server wrote and purged before it reached the store. */
export interface ArchiveGap {
  /** The oldest file the server still has; the ones before it are lost to the archive. */
  readonly before: string;
  /** Its Gtid_list: transactions up to this state are missing from the archive (a backup covering it closes the gap). */
  readonly startState: string;
  readonly detectedAt: string;
}

/** The file the server wrote before `name` (`mysql-bin.000041` before `.000042`); null before the first. */
export function predecessorName(name: string): string | null {
  const dot = name.lastIndexOf('.');
  const digits = name.slice(dot + 1);
  const n = Number(digits);
  return n > 1 ? `${name.slice(0, dot + 1)}${String(n - 1).padStart(digits.length, '0')}` : null;
}

/**
 * What to do with the server's binary logs: the closed ones not yet archived (oldest first), and
 * whether the oldest file it still has lacks its predecessor in the archive (purged unarchived).
 * `archived(name)`: whether that file of this server is in the store. The last listed file is
 * the open one: never archived. A server's first file (number 1, after a new datadir or RESET
 * MASTER) has no predecessor to miss.
 */
export function archiveWork(files: readonly ServerBinlog[], archived: (name: string) => boolean): { pending: ServerBinlog[]; gapBefore: string | null } {
  const closed = files.slice(0, -1);
  const pending = closed.filter((f) => !archived(f.name));
  const oldest = files[0];
  let gapBefore: string | null = null;
  const predecessor = oldest ? predecessorName(oldest.name) : null;
  if (oldest && predecessor !== null && !archived(oldest.name) && !archived(predecessor)) gapBefore = oldest.name;
  return { pending, gapBefore };
}
