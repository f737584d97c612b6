/**
 * Reads the chunk headers of an xbstream as it passes, to keep the small files that say what a
 * backup is: the info files (coordinates, server and tool versions) and the closing files'
 * names. Payloads are skipped, not copied, so it costs next to nothing beside the pipe.
 *
 * Chunk layout (MariaDB extra/mariabackup/xbstream_read.cc; Percona xbstream_read.cc), integers
 * little-endian:
 *   "XBSTCK01" | flags u8 | type u8 ('P' payload, 'E' end of file, 'S' sparse payload, Percona 8.0)
 *   | path length u32 | path
 *   'S' only: sparse map entries u32
 *   'P'/'S':  payload length u64 | offset u64 | checksum u32
 *   'S' only: map entries × (skip u32, length u32)
 *   'P'/'S':  payload
 */
import { ParseError } from '../core/errors.js';

const MAGIC = Buffer.from('XBSTCK01');
const MAX_PATH = 4096;
/** Files kept whole: small text files at the top of the stream. */
const KEPT = /^(xtrabackup|mariadb_backup)_(binlog_info|slave_info|info|checkpoints)$|^backup-my\.cnf$/;
const MAX_KEPT_BYTES = 1024 * 1024;

export interface XbstreamSummary {
  /** Every path that got its end-of-file chunk. */
  readonly files: ReadonlySet<string>;
  /** The kept files' contents. */
  readonly kept: ReadonlyMap<string, string>;
}

/** A state machine fed chunk by chunk; `finish` throws when the stream stopped mid-chunk. */
export class XbstreamReader {
  private pending = Buffer.alloc(0);
  /** Payload bytes still to skip (or keep) of the current chunk. */
  private payloadLeft = 0;
  private keeping: { path: string; parts: Buffer[] } | null = null;
  private readonly files = new Set<string>();
  private readonly kept = new Map<string, Buffer[]>();

  push(chunk: Buffer): void {
    let buf = chunk;
    for (;;) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, buf.length);
        if (this.keeping) this.keeping.parts.push(Buffer.from(buf.subarray(0, n)));
        this.payloadLeft -= n;
        buf = buf.subarray(n);
        if (this.payloadLeft > 0) return;
        this.keeping = null;
      }
      if (buf.length === 0) return;
      const data = this.pending.length > 0 ? Buffer.concat([this.pending, buf]) : buf;
      const used = this.header(data);
      if (used === 0) {
        this.pending = Buffer.from(data);
        return;
      }
      this.pending = Buffer.alloc(0);
      buf = data.subarray(used);
    }
  }

  /** Parses one header at the start of `b`; returns the bytes it took, 0 when `b` is too short. */
  private header(b: Buffer): number {
    if (b.length < 14) return 0;
    if (!b.subarray(0, 8).equals(MAGIC)) throw new ParseError('xbstream: bad chunk magic (not an xbstream, or corrupt)', 'xbstream');
    const type = String.fromCharCode(b[9]!);
    const pathLen = b.readUInt32LE(10);
    if (pathLen === 0 || pathLen > MAX_PATH) throw new ParseError(`xbstream: path length ${pathLen} out of range`, 'xbstream');
    let at = 14 + pathLen;
    if (b.length < at) return 0;
    const path = b.subarray(14, at).toString('utf8');
    if (type === 'E') {
      this.files.add(path);
      return at;
    }
    if (type !== 'P' && type !== 'S') throw new ParseError(`xbstream: unknown chunk type ${JSON.stringify(type)} for ${path}`, 'xbstream');
    let mapEntries = 0;
    if (type === 'S') {
      if (b.length < at + 4) return 0;
      mapEntries = b.readUInt32LE(at);
      at += 4;
    }
    if (b.length < at + 20 + mapEntries * 8) return 0;
    const length = Number(b.readBigUInt64LE(at));
    at += 20 + mapEntries * 8;
    this.payloadLeft = length;
    if (KEPT.test(path)) {
      const parts = this.kept.get(path) ?? [];
      this.kept.set(path, parts);
      if (parts.reduce((n, p) => n + p.length, 0) + length <= MAX_KEPT_BYTES) this.keeping = { path, parts };
    }
    return at;
  }

  finish(): XbstreamSummary {
    if (this.pending.length > 0 || this.payloadLeft > 0) throw new ParseError('xbstream: the stream ends inside a chunk', 'xbstream');
    return { files: this.files, kept: new Map([...this.kept].map(([p, parts]) => [p, Buffer.concat(parts).toString('utf8')])) };
  }
}
