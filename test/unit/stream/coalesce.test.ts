import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { COALESCE_BUFFERS, COALESCE_BYTES, gatherInto } from '../../../agent/stream/coalesce.js';

/** A stream tool's stdin: what each write held when written; it calls back a tick later, as a pipe does once the kernel took the bytes. */
function toolStdin(onWrite: (chunk: Buffer) => void = () => {}) {
  const writes: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      writes.push(Buffer.from(chunk));
      onWrite(chunk);
      void tick().then(() => cb());
    },
  });
  return { sink, writes };
}

async function writesOf(chunks: readonly Buffer[], bytes?: number, buffers?: number): Promise<Buffer[]> {
  const { sink, writes } = toolStdin();
  await pipeline(Readable.from(chunks), gatherInto(sink, bytes, buffers));
  expect(sink.writableFinished).toBe(true);
  return writes;
}

describe('gatherInto', () => {
  it('gathers small chunks into writes of its size, the rest at the end, every byte in order, then ends the target', async () => {
    const chunks = [...Array(102).keys()].map((i) => Buffer.alloc(1000, i));
    const writes = await writesOf(chunks, 4096);
    expect(writes.map((w) => w.length)).toEqual([...Array(24).fill(4096), 102_000 - 24 * 4096]);
    expect(Buffer.concat(writes).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('splits a chunk larger than its size across writes', async () => {
    const big = Buffer.from([...Array(COALESCE_BYTES * 2 + 10).keys()].map((i) => i % 251));
    const writes = await writesOf([big]);
    expect(writes.map((w) => w.length)).toEqual([COALESCE_BYTES, COALESCE_BYTES, 10]);
    expect(Buffer.concat(writes).equals(big)).toBe(true);
  });

  it('writes nothing for an empty stream', async () => {
    expect(await writesOf([])).toEqual([]);
  });

  it('reuses its few buffers, and none before the target called back for its write', async () => {
    const pending = new Set<ArrayBuffer>();
    const seen = new Set<ArrayBuffer>();
    let reusedWhilePending = false;
    const { sink, writes } = toolStdin((chunk) => {
      if (pending.has(chunk.buffer)) reusedWhilePending = true;
      pending.add(chunk.buffer);
      seen.add(chunk.buffer);
    });
    const original = sink._write.bind(sink);
    sink._write = (chunk: Buffer, enc, cb) => original(chunk, enc, (err) => (pending.delete(chunk.buffer), cb(err)));
    const chunks = [...Array(200).keys()].map((i) => Buffer.alloc(700, i));
    await pipeline(Readable.from(chunks), gatherInto(sink, 2048));
    expect(Buffer.concat(writes).equals(Buffer.concat(chunks))).toBe(true);
    expect(reusedWhilePending).toBe(false);
    expect(seen.size).toBe(COALESCE_BUFFERS);
  });

  it('fails the pipeline when the target fails, and destroys the target when the source fails', async () => {
    const failing = new Writable({ write: (_c, _e, cb) => cb(new Error('EPIPE')) });
    await expect(pipeline(Readable.from([Buffer.alloc(5000)]), gatherInto(failing, 1024))).rejects.toThrow('EPIPE');

    const { sink } = toolStdin();
    const source = new Readable({ read() {} });
    const done = pipeline(source, gatherInto(sink, 1024));
    source.push(Buffer.alloc(10));
    source.destroy(new Error('peer went away'));
    await expect(done).rejects.toThrow('peer went away');
    expect(sink.destroyed).toBe(true);
  });
});
