/**
 * MariaDB binary log files read directly (format v4), and the plan for a point-in-time restore
 * from archived ones. Pure: bytes come in as an async iterable of chunks (a file stream, an object
 * download), no file system or process is touched here.
 *
 * Why the raw file and not `mariadb-binlog` text: every fact the archive index needs sits in the
 * 19-byte event headers and in three small event bodies (GTID, Gtid_list, Rotate); the headers
 * carry UTC Unix seconds, where `mariadb-binlog` prints local time of its own TZ with a
 * space-padded hour; and reading 100 MB this way takes well under a second without a child.
 * Encrypted binary logs (`encrypt_binlog`) are refused: their bodies cannot be read here.
 */
import { createHash } from '../core/builtins.js';
import { crc32 } from 'node:zlib';
import { compareGtid, gtidCovers, isGtidState } from './gtid.js';

/** Seconds since 1970-01-01 UTC, as binlog event headers carry them (whole seconds). */
export type UnixSeconds = number;

/** Event types this module reads (log_event.h); others are only counted. */
export const EVENT = {
  QUERY: 2,
  STOP: 3,
  ROTATE: 4,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  BINLOG_CHECKPOINT: 161,
  GTID: 162,
  GTID_LIST: 163,
  START_ENCRYPTION: 164,
} as const;

const MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
const HEADER = 19;
/** LOG_EVENT_BINLOG_IN_USE_F, on the format description while the server has the file open. */
const IN_USE = 0x1;
/** GTID event flags2: a statement outside BEGIN … COMMIT (DDL, non-transactional). */
const FL_STANDALONE = 0x1;

export interface BinlogEvent {
  /** Offset of the event's first byte; `mariadb-binlog --start-position` takes it. */
  readonly at: number;
  /** Offset just past it (the header's next position; `# at` of the following event). */
  readonly end: number;
  readonly time: UnixSeconds;
  readonly type: number;
  readonly serverId: number;
  /** GTID events: `domain-server-seq`. */
  readonly gtid?: string;
  readonly standalone?: boolean;
  /** Gtid_list events: the binlog state before this file, `d-s-n,…` ('' when empty). */
  readonly gtidList?: string;
  /** Rotate events: the next file. */
  readonly rotateTo?: string;
}

/** One transaction (event group): its GTID and the time of its last event, the commit. */
export interface BinlogTransaction {
  readonly gtid: string;
  readonly commitTime: UnixSeconds;
  /** Offset just past its last event. */
  readonly end: number;
}

/** What the archive index records of one binary log file. */
export interface BinlogFileSummary {
  readonly name: string;
  readonly serverId: number;
  /** The server's binlog state when the file was opened (its Gtid_list event), '' when empty. */
  readonly startState: string;
  /** The state after its last transaction: startState advanced by every GTID in the file. */
  readonly endState: string;
  readonly firstGtid: string | null;
  readonly lastGtid: string | null;
  /**
   * Earliest and latest commit time of its transactions, null when it holds none. Not simply the
   * first and last: events carry their statement's start time, so binlog order (commit order)
   * may step back a second.
   */
  readonly firstEventTime: UnixSeconds | null;
  readonly lastEventTime: UnixSeconds | null;
  /** Time of the Rotate/Stop event that closed it; null for a file still open (or cut by a crash). */
  readonly closedAt: UnixSeconds | null;
  readonly transactions: number;
  readonly size: number;
  readonly sha256: string;
}

/** A binary log that cannot be read: the message names the file, the offset and the cause. */
export class BinlogFormatError extends Error {}

/**
 * The events of one binary log file, in order, a batch per chunk read (a generator step per
 * event cost more than the reading: 40 MB/s). Checks the magic, each event's length and, when
 * the format description says so, every CRC32 (the format description's own is computed with its
 * in-use flag clear: the server sets and clears that flag without rewriting the checksum).
 */
export async function* readBinlogEvents(name: string, chunks: AsyncIterable<Buffer>): AsyncGenerator<BinlogEvent[]> {
  let buf: Buffer = Buffer.alloc(0);
  let offset = 0; // file offset of buf[0]
  let checksummed = false;
  const fail = (at: number, why: string): never => {
    throw new BinlogFormatError(`${name}: ${why} at offset ${at}`);
  };
  let started = false;
  // Chunks held back until the event they end in is whole: joined once, not once per chunk
  // (a 1 MB row event in 64 KB chunks was 8 MB of copies).
  let waiting: Buffer[] = [];
  let waitingBytes = 0;
  let need = 0; // bytes buf must reach before it is worth parsing again
  for await (const chunk of chunks) {
    waiting.push(chunk);
    waitingBytes += chunk.length;
    if (buf.length + waitingBytes < need) continue;
    buf = buf.length === 0 && waiting.length === 1 ? chunk : Buffer.concat([buf, ...waiting]);
    waiting = [];
    waitingBytes = 0;
    if (!started) {
      if (buf.length < MAGIC.length) continue;
      if (!buf.subarray(0, 4).equals(MAGIC)) fail(0, 'not a binary log (no \\xfebin magic)');
      buf = buf.subarray(4);
      offset = 4;
      started = true;
    }
    const batch: BinlogEvent[] = [];
    need = HEADER;
    while (buf.length >= HEADER) {
      const size = buf.readUInt32LE(9);
      if (size < HEADER) fail(offset, `event length ${size} is shorter than its header`);
      if (buf.length < size) {
        need = size;
        break;
      }
      const raw = buf.subarray(0, size);
      let signed = raw.subarray(0, size - 4);
      if (raw[4] === EVENT.FORMAT_DESCRIPTION) {
        checksummed = raw[size - 5] === 1;
        signed = Buffer.from(signed);
        signed[17] = signed[17]! & ~IN_USE;
      }
      if (checksummed && raw.readUInt32LE(size - 4) !== crc32(signed)) fail(offset, 'CRC32 mismatch');
      batch.push(decode(raw, offset, checksummed ? size - 4 : size, fail));
      buf = buf.subarray(size);
      offset += size;
    }
    if (batch.length > 0) yield batch;
  }
  const left = buf.length + waitingBytes;
  if (!started) fail(0, 'not a binary log (shorter than its magic)');
  if (left > 0) fail(offset, `file ends inside an event (${left} bytes left)`);
}

function decode(raw: Buffer, at: number, bodyEnd: number, fail: (at: number, why: string) => never): BinlogEvent {
  const base = { at, end: at + raw.length, time: raw.readUInt32LE(0), type: raw[4]!, serverId: raw.readUInt32LE(5) };
  const body = raw.subarray(HEADER, bodyEnd);
  switch (base.type) {
    case EVENT.START_ENCRYPTION:
      return fail(at, 'encrypted binary log (encrypt_binlog): read it with the server, not the file');
    case EVENT.GTID: {
      const seq = body.readBigUInt64LE(0);
      const domain = body.readUInt32LE(8);
      return { ...base, gtid: `${domain}-${base.serverId}-${seq}`, standalone: (body[12]! & FL_STANDALONE) !== 0 };
    }
    case EVENT.GTID_LIST: {
      const count = body.readUInt32LE(0) & 0x0fffffff;
      const items: string[] = [];
      for (let i = 0; i < count; i++) {
        const o = 4 + i * 16;
        items.push(`${body.readUInt32LE(o)}-${body.readUInt32LE(o + 4)}-${body.readBigUInt64LE(o + 8)}`);
      }
      return { ...base, gtidList: items.join(',') };
    }
    case EVENT.ROTATE:
      return { ...base, rotateTo: body.subarray(8).toString('latin1') };
    default:
      return base;
  }
}

/** `d-s-n` items of a state, keyed by domain. */
function domains(state: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const item of state.split(',').filter(Boolean)) map.set(item.slice(0, item.indexOf('-')), item);
  return map;
}

/** A state advanced by one GTID (its domain's item replaced). */
export function advanceState(state: string, gtid: string): string {
  const map = domains(state);
  map.set(gtid.slice(0, gtid.indexOf('-')), gtid);
  return [...map.entries()].sort(([a], [b]) => Number(a) - Number(b)).map(([, item]) => item).join(',');
}

/**
 * Folds events into transactions: a GTID event and every event up to the next GTID or file
 * event (Rotate, Stop, Binlog_checkpoint, Gtid_list), stamped with the time of its last event.
 * `each` sees every transaction; only counts and bounds are kept, so a 64 MB file costs no more
 * memory than one transaction.
 */
class TransactionFold {
  private open: { gtid: string; commitTime: number; end: number } | null = null;
  constructor(private readonly each: (t: BinlogTransaction) => void) {}

  add(e: BinlogEvent): void {
    if (e.gtid !== undefined) {
      this.close();
      this.open = { gtid: e.gtid, commitTime: e.time, end: e.end };
    } else if (e.type === EVENT.ROTATE || e.type === EVENT.STOP || e.type === EVENT.BINLOG_CHECKPOINT || e.type === EVENT.GTID_LIST) {
      this.close();
    } else if (this.open) {
      this.open.commitTime = e.time;
      this.open.end = e.end;
    }
  }

  close(): void {
    if (this.open) this.each(this.open);
    this.open = null;
  }
}

/** Every event of a file through `onEvent`, then its transactions through `onTransaction`, as read. */
async function foldBinlog(name: string, chunks: AsyncIterable<Buffer>, onEvent: (e: BinlogEvent) => void, onTransaction: (t: BinlogTransaction) => void): Promise<void> {
  const fold = new TransactionFold(onTransaction);
  for await (const batch of readBinlogEvents(name, chunks)) {
    for (const e of batch) {
      onEvent(e);
      fold.add(e);
    }
  }
  fold.close();
}

/** The transactions of a file, in binlog order (for the file a restore stops in). */
export async function binlogTransactions(name: string, chunks: AsyncIterable<Buffer>): Promise<BinlogTransaction[]> {
  const out: BinlogTransaction[] = [];
  await foldBinlog(name, chunks, () => {}, (t) => out.push(t));
  return out;
}

/** Reads a whole file once, in constant memory: what the archive index records of it. */
export async function summarizeBinlog(name: string, chunks: AsyncIterable<Buffer>): Promise<BinlogFileSummary> {
  const hash = createHash('sha256');
  let size = 0;
  async function* hashed() {
    for await (const chunk of chunks) {
      hash.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  }
  let serverId = 0;
  let startState: string | null = null;
  let closedAt: number | null = null;
  let endState = '';
  let first: BinlogTransaction | null = null;
  let last: BinlogTransaction | null = null;
  let earliest: number | null = null;
  let latest: number | null = null;
  let count = 0;
  await foldBinlog(
    name,
    hashed(),
    (e) => {
      if (e.type === EVENT.FORMAT_DESCRIPTION) serverId = e.serverId;
      else if (e.gtidList !== undefined && startState === null) endState = startState = e.gtidList;
      else if (e.type === EVENT.ROTATE || e.type === EVENT.STOP) closedAt = e.time;
    },
    (t) => {
      endState = advanceState(endState, t.gtid);
      first ??= t;
      last = t;
      if (earliest === null || t.commitTime < earliest) earliest = t.commitTime;
      if (latest === null || t.commitTime > latest) latest = t.commitTime;
      count++;
    },
  );
  if (startState === null) throw new BinlogFormatError(`${name}: no Gtid_list event: not a MariaDB 10.0+ binary log`);
  return {
    name,
    serverId,
    startState,
    endState,
    firstGtid: (first as BinlogTransaction | null)?.gtid ?? null,
    lastGtid: (last as BinlogTransaction | null)?.gtid ?? null,
    firstEventTime: earliest,
    lastEventTime: latest,
    closedAt,
    transactions: count,
    size,
    sha256: hash.digest('hex'),
  };
}

/** Where a restored backup stands: the GTID state it holds and when its consistent point was taken. */
export interface BackupCoordinates {
  /** gtid_binlog_pos of the backup (binlog_info's third column). */
  readonly gtid: string;
  readonly takenAt: UnixSeconds;
}

/** A moment (every transaction committed at or before it, in whole seconds) or a GTID state to stop at. */
export type PitrTarget = { readonly time: UnixSeconds } | { readonly gtid: string };

export interface PitrPlan {
  readonly kind: 'plan';
  /** Files to replay, in order (the first one from the backup's position, the last one up to the stop). */
  readonly files: readonly BinlogFileSummary[];
  /** The last transaction replayed; null when nothing after the backup is wanted. */
  readonly lastEvent: BinlogTransaction | null;
  /** mariadb-binlog options selecting exactly the transactions after the backup up to lastEvent. */
  readonly options: readonly string[];
}

export interface PitrRefusal {
  readonly kind: 'refused';
  readonly reason: 'before-backup' | 'gap' | 'past-archive' | 'not-in-archive';
  /** One line: what is missing and what would allow the point. */
  readonly message: string;
}

/** The plan needs the transactions of this file (the one the target falls in): read it and ask again. */
export interface PitrNeedsFile {
  readonly kind: 'needs-transactions';
  readonly file: BinlogFileSummary;
}

const fmt = (t: UnixSeconds) => new Date(t * 1000).toISOString().replace('.000Z', 'Z');
const ahead = (a: string, b: string) => compareGtid(a, b) === 'ahead';

/**
 * What to replay on top of `backup` to reach `target`, from the archive `index` (files in the
 * order they were archived). The chain is followed by GTID state, not by file name: a file must
 * start exactly where the one before it ended, so a missing file (or one purged before it was
 * archived) is a gap even when names look consecutive, and a new server's files (names from
 * 000001 again) continue the chain. A time target takes every transaction up to the first one
 * committed after it; the archive must hold a file closed after that second, else events of that
 * second may still sit in the server's open file.
 */
export function planPointInTime(
  backup: BackupCoordinates,
  index: readonly BinlogFileSummary[],
  target: PitrTarget,
  /** Transactions of files already read, by the file's SHA-256 (names repeat across servers). */
  transactions: ReadonlyMap<string, readonly BinlogTransaction[]> = new Map(),
): PitrPlan | PitrRefusal | PitrNeedsFile {
  const refuse = (reason: PitrRefusal['reason'], message: string): PitrRefusal => ({ kind: 'refused', reason, message });
  if ('gtid' in target) {
    if (!isGtidState(target.gtid) || target.gtid.trim() === '') return refuse('not-in-archive', `"${target.gtid}" is not a MariaDB GTID state (domain-server-seq[,…])`);
    if (!gtidCovers(target.gtid, backup.gtid)) return refuse('before-backup', `${target.gtid} is before the backup's ${backup.gtid}: restore from an older backup`);
  } else if (target.time < backup.takenAt) {
    return refuse('before-backup', `${fmt(target.time)} is before the backup (taken ${fmt(backup.takenAt)}): restore from an older backup`);
  }
  // The file the target falls in: the first whose transactions go past it.
  const boundary = (f: BinlogFileSummary) => ('gtid' in target ? gtidCovers(f.endState, target.gtid) : f.lastEventTime !== null && f.lastEventTime > target.time);
  const first = index.findIndex((f) => ahead(f.endState, backup.gtid));
  const files: BinlogFileSummary[] = [];
  // Whether the walk found where the target falls (else it ran off the newest archived file).
  let inside = false;
  if (first >= 0) {
    if (!gtidCovers(backup.gtid, index[first]!.startState)) {
      return refuse('gap', `gap: transactions after the backup's ${backup.gtid} up to ${index[first]!.startState} (before ${index[first]!.name}) are not archived; a point after the next full backup is possible`);
    }
    for (let i = first; i < index.length; i++) {
      const f = index[i]!;
      const prev = index[i - 1];
      if (i > first && compareGtid(f.startState, prev!.endState) !== 'equal') {
        // The missing file was opened when `prev` closed: a moment before that is not in it.
        if (!('gtid' in target) && prev!.closedAt !== null && target.time < prev!.closedAt) {
          inside = true;
          break;
        }
        return refuse('gap', `gap: ${prev!.name} ends at ${prev!.endState} but ${f.name} starts at ${f.startState}; a point up to ${prev!.endState}${prev!.closedAt === null ? '' : ` (before ${fmt(prev!.closedAt)})`} is possible`);
      }
      files.push(f);
      if (boundary(f)) {
        inside = true;
        break;
      }
    }
  }
  const newest = index.at(-1);
  if (!inside && ('gtid' in target ? !gtidCovers(backup.gtid, target.gtid) : !newest || newest.closedAt === null || target.time >= newest.closedAt)) {
    const archived = newest ? `${newest.name}, up to ${newest.endState}${newest.closedAt === null ? '' : `, closed ${fmt(newest.closedAt)}`}` : 'nothing';
    return refuse('past-archive', `${'gtid' in target ? target.gtid : fmt(target.time)} is past the newest archived event (${archived}): wait for the next archive or choose an earlier point`);
  }
  // Walk back from the last file to the last wanted transaction (a file may hold none of them).
  while (files.length > 0) {
    const last = files.at(-1)!;
    const list = transactions.get(last.sha256);
    if (!list) return { kind: 'needs-transactions', file: last };
    let state = last.startState;
    let lastEvent: BinlogTransaction | null = null;
    let wantedState = state;
    for (const t of list) {
      state = advanceState(state, t.gtid);
      if (gtidCovers(backup.gtid, state)) continue; // already in the backup
      if ('gtid' in target ? !gtidCovers(target.gtid, state) : t.commitTime > target.time) break;
      lastEvent = t;
      wantedState = state;
    }
    if ('gtid' in target && lastEvent && !gtidCovers(wantedState, target.gtid)) {
      return refuse('not-in-archive', `${target.gtid} is not a transaction of ${last.name} (it stops at ${wantedState}): give a GTID state the archive reaches`);
    }
    if (lastEvent) return { kind: 'plan', files, lastEvent, options: [`--start-position=${backup.gtid}`, `--stop-position=${wantedState}`] };
    files.pop();
  }
  return { kind: 'plan', files: [], lastEvent: null, options: [] };
}


/** The start of a file, read only as far as its first transaction: its Gtid_list and that transaction's time. */
export interface BinlogHead {
  readonly startState: string | null;
  /** Time of the first GTID event (its transaction's commit); null when the bytes read hold none. */
  readonly firstTransactionTime: UnixSeconds | null;
}

/**
 * Reads events until the first GTID event, then stops reading (the rest of a 1 GB file is never
 * touched). `chunks` must end at an event boundary (a server's reported file size does) when
 * the file may hold no transaction yet.
 */
export async function readBinlogHead(name: string, chunks: AsyncIterable<Buffer>): Promise<BinlogHead> {
  let startState: string | null = null;
  for await (const batch of readBinlogEvents(name, chunks)) {
    for (const e of batch) {
      if (e.gtidList !== undefined && startState === null) startState = e.gtidList;
      if (e.gtid !== undefined) return { startState, firstTransactionTime: e.time };
    }
  }
  return { startState, firstTransactionTime: null };
}
