import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { type Compression, compressor, decompressor } from '../../../agent/stream/compression.js';

// Half random, half repeated: compressible, and not trivially so.
const DATA = Buffer.concat([randomBytes(256 * 1024), Buffer.alloc(768 * 1024, 'mysql-agent ')]);
const through = (bytes: Buffer, t: NodeJS.ReadWriteStream) => buffer(Readable.from([bytes]).pipe(t));

describe('stream compression', () => {
  it.each<Compression>(['zstd', 'none'])('%s gives back every byte', async (c) => {
    const packed = await through(DATA, compressor(c));
    expect((await through(packed, decompressor(c))).equals(DATA)).toBe(true);
    if (c === 'none') expect(packed.equals(DATA)).toBe(true);
    else expect(packed.length).toBeLessThan(DATA.length / 2);
  });

  it('zstd fails on a flipped byte (its frame checksum), before any SHA-256 at the end', async () => {
    const packed = await through(DATA, compressor('zstd'));
    packed[packed.length - 2]! ^= 0xff;
    await expect(through(packed, decompressor('zstd'))).rejects.toThrow();
  });

  it('zstd fails on a truncated frame', async () => {
    const packed = await through(DATA, compressor('zstd'));
    await expect(through(packed.subarray(0, packed.length - 100), decompressor('zstd'))).rejects.toThrow();
  });
});
