import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { COALESCE_BYTES, coalesce } from '../../../agent/stream/coalesce.js';

/** The writes a stream tool's stdin would see. */
async function writesOf(chunks: readonly Buffer[], bytes?: number): Promise<Buffer[]> {
  const writes: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      writes.push(chunk);
      cb();
    },
  });
  await pipeline(Readable.from(chunks), coalesce(bytes), sink);
  return writes;
}

describe('coalesce', () => {
  it('gathers small chunks into writes of at least its size, the rest at the end, every byte in order', async () => {
    const chunks = [...Array(102).keys()].map((i) => Buffer.alloc(1000, i));
    const writes = await writesOf(chunks, 4096);
    expect(writes.map((w) => w.length)).toEqual([...Array(20).fill(5000), 2000]);
    expect(Buffer.concat(writes).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('passes a chunk at or above its size on at once, alone', async () => {
    const big = Buffer.alloc(COALESCE_BYTES, 1);
    expect((await writesOf([big, big])).map((w) => w.length)).toEqual([COALESCE_BYTES, COALESCE_BYTES]);
  });

  it('writes nothing for an empty stream', async () => {
    expect(await writesOf([])).toEqual([]);
  });
});
