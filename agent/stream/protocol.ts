/**
 * agent/stream/ is the transport of a backup: the tools' command lines, the owner of child
 * processes, this protocol, and flat-memory metering.
 *
 * What the sender (sidecar) and the receiver (init) of a backup stream agree on.
 *
 * The body is the raw xbstream. The stream tool's exit status says nothing about
 * completeness (mbstream exits 0 on a stream cut at a chunk boundary), so the sender's verdict
 * travels after the last byte, and the receiver treats a missing or non-success verdict as a
 * failed clone. Two framings carry it:
 * - plain GET: a chunked body and the verdict as an HTTP trailer (every sender and receiver);
 * - upgraded GET (`Upgrade: mysql-agent-xbstream`, offered by senders whose HEAD /backup says
 *   so): after `101` the connection carries the bare xbstream and the verdict is its last file,
 *   STATUS_FILE, so the receiver can hand the socket itself to the stream tool and stay off the
 *   data path; the tool extracts the verdict, the receiver reads and removes it.
 */
import { createHash, timingSafeEqual } from '../core/builtins.js';
import { crc32 } from 'node:zlib';

export const BACKUP_PATH = '/backup';
export const STATUS_TRAILER = 'x-backup-status';
export const SUCCESS = 'Success';
/** The sender's estimate of the stream's size, so a receiver can refuse before filling its volume. */
export const ESTIMATE_HEADER = 'x-backup-estimated-bytes';
/** ESTIMATE_HEADER's bytes, or null when the sender sent none (or no number). */
export function estimatedBytesOf(headers: Readonly<Record<string, string | string[] | undefined>>): number | null {
  const estimate = Number(headers[ESTIMATE_HEADER] ?? NaN);
  return Number.isFinite(estimate) ? estimate : null;
}

/** The Upgrade token of the bare-xbstream framing; a sender's HEAD /backup names it in UPGRADES_HEADER. */
export const STREAM_UPGRADE = 'mysql-agent-xbstream';
export const UPGRADES_HEADER = 'x-backup-upgrades';
/**
 * A sender's HEAD /backup names, in ENCODINGS_HEADER, what it compresses the upgraded stream with
 * when asked (zstd), and serves PROBE_PATH: `?bytes=N` incompressible bytes, nothing started, for a
 * receiver with CLONE_COMPRESSION=auto to time the link with.
 */
export const ENCODINGS_HEADER = 'x-backup-encodings';
export const PROBE_PATH = '/backup/probe';
export const PROBE_BYTES = { default: 16 * 1024 * 1024, max: 64 * 1024 * 1024 } as const;
/** In the 101: when this backup started, as the sender's /status names it (last_backup.started_at). */
export const STARTED_HEADER = 'x-backup-started-at';
/** The verdict's file in the upgraded framing: `Success <bytes>` or `Failed: <why>`. */
export const STATUS_FILE = 'mysql-agent-backup-status';

/** The status trailer for a finished child: `Success`, or `Failed: <why>`. */
export function statusTrailer(failure: string | null): string {
  // Trailer values must stay one header line of visible ASCII.
  return failure === null ? SUCCESS : `Failed: ${failure.replace(/[^\x20-\x7e]/g, ' ').slice(0, 200)}`;
}

/**
 * Files every complete stream ends with (written after all data files); alternatives are the
 * names of xtrabackup / MariaDB < 11.1 and of MariaDB 11.1+.
 */
export const CLOSING_FILES: readonly (readonly string[])[] = [
  ['backup-my.cnf'],
  ['xtrabackup_info', 'mariadb_backup_info'],
  ['xtrabackup_checkpoints', 'mariadb_backup_checkpoints'],
];

/** Parses `Authorization: Bearer <token>`; null when absent or of another scheme. */
export function bearerToken(header: string | undefined): string | null {
  // The scheme name is case-insensitive (RFC 9110 §11.1).
  const m = header === undefined ? null : /^bearer ([\x21-\x7e]+)$/i.exec(header);
  return m ? m[1]! : null;
}

/** Compares in time independent of where the strings differ and of their lengths. */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

const XB_MAGIC = 'XBSTCK01';

/** One xbstream chunk header: magic, flags 0, type, path length (u32 LE), path. */
function chunkHeader(type: 'P' | 'E', path: Buffer, extra: number): Buffer {
  const b = Buffer.alloc(14 + path.length + extra);
  b.write(XB_MAGIC, 0, 'latin1');
  b[9] = type.charCodeAt(0);
  b.writeUInt32LE(path.length, 10);
  path.copy(b, 14);
  return b;
}

/**
 * The verdict as the stream's last file (one payload chunk at offset 0, CRC-32 of the payload,
 * then its end-of-file chunk): `Success <bytes sent before it>` or `Failed: <why>`.
 */
export function statusChunk(failure: string | null, bytes: number): Buffer {
  const path = Buffer.from(STATUS_FILE);
  const payload = Buffer.from(`${failure === null ? `${SUCCESS} ${bytes}` : statusTrailer(failure)}\n`);
  const head = chunkHeader('P', path, 20);
  const at = 14 + path.length;
  head.writeBigUInt64LE(BigInt(payload.length), at);
  head.writeBigUInt64LE(0n, at + 8);
  head.writeUInt32LE(crc32(payload), at + 16);
  return Buffer.concat([head, payload, chunkHeader('E', path, 0)]);
}

/** What the extracted STATUS_FILE says: null bytes unless it is a success. */
export function parseStatusFile(text: string): { readonly status: string; readonly bytes: number | null } {
  const line = text.trim();
  const m = /^Success (\d+)$/.exec(line);
  return m ? { status: SUCCESS, bytes: Number(m[1]) } : { status: line, bytes: null };
}

/** A response head: status, lower-cased headers, and how many bytes of the buffer it took. */
export interface ResponseHead {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly length: number;
}

const HEAD_END = Buffer.from('\r\n\r\n');
/** A head longer than this is not one of ours. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** Parses an HTTP/1.1 response head at the start of `b`; null while incomplete. Throws on garbage. */
export function parseResponseHead(b: Buffer): ResponseHead | null {
  const end = b.indexOf(HEAD_END);
  if (end < 0) {
    if (b.length > MAX_HEAD_BYTES) throw new Error(`response head longer than ${MAX_HEAD_BYTES} bytes`);
    return null;
  }
  const [statusLine, ...lines] = b.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine!);
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(statusLine!.slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(m[1]), headers, length: end + HEAD_END.length };
}
