/**
 * A backup stream's compression: zstd (Node 24's own zlib binding, level 1: the speed of
 * `zstd -1` at about the same size) or none. Both directions are streams, so memory stays flat.
 * The stored form of a backup (BACKUP_COMPRESSION) and a clone's wire (CLONE_COMPRESSION) use it.
 */
import { PassThrough, type Transform } from 'node:stream';
import { constants, createZstdCompress, createZstdDecompress, zstdCompressSync } from 'node:zlib';

export type Compression = 'zstd' | 'none';

/** zstd level 1: the level the peers' `zstd -1` pipeline uses, ~3x faster than gzip's default at a smaller size. */
const ZSTD_LEVEL = 1;
/**
 * Output per step of the binding (zlib's default is 16 KiB): every step is a trip to the thread
 * pool and a write downstream, and a 64 KiB compressed chunk decompresses into about 256 KiB.
 */
const CHUNK_BYTES = 256 * 1024;

/** The frame checksum makes a corrupt object fail in decompression, not only at the SHA-256 at the end. */
const PARAMS = { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL, [constants.ZSTD_c_checksumFlag]: 1 };

export function compressor(c: Compression): Transform {
  return c === 'zstd' ? createZstdCompress({ chunkSize: CHUNK_BYTES, params: PARAMS }) : new PassThrough();
}

/** A few bytes as one whole frame of their own (decompressors read frames one after another as one stream). */
export function zstdFrame(bytes: Buffer): Buffer {
  return zstdCompressSync(bytes, { params: PARAMS });
}

export function decompressor(c: Compression): Transform {
  return c === 'zstd' ? createZstdDecompress({ chunkSize: CHUNK_BYTES }) : new PassThrough();
}
