/**
 * agent/stream/ is the transport of a backup: the tools' command lines, the owner of child
 * processes, this protocol, and flat-memory metering.
 *
 * What the sender (sidecar) and the receiver (init) of a backup stream agree on.
 *
 * The body is the raw xbstream. The stream tool's exit status says nothing about
 * completeness (mbstream exits 0 on a stream cut at a chunk boundary), so the sender's verdict
 * travels after the last byte as an HTTP trailer, and the receiver treats a missing or
 * non-success trailer as a failed clone.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const BACKUP_PATH = '/backup';
export const STATUS_TRAILER = 'x-backup-status';
export const SUCCESS = 'Success';
/** The sender's estimate of the stream's size, so a receiver can refuse before filling its volume. */
export const ESTIMATE_HEADER = 'x-backup-estimated-bytes';

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
