import { PerformanceObserver, constants } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { COLLECT_EVERY_BYTES, FULL_ABOVE_BYTES, chunkCollector, meterChunks } from '../../../agent/stream/meter.js';

const CHUNK = 64 * 1024;

/** A stream as fast as memory: every chunk a fresh 64 KiB buffer, as a pipe or socket reads them. */
function syntheticStream(totalBytes: number): Readable {
  let sent = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (sent >= totalBytes) return void this.push(null);
      sent += CHUNK;
      this.push(Buffer.alloc(CHUNK, 1));
    },
  });
}

describe('chunkCollector', () => {
  it('collects once per interval of stream, across chunk boundaries', () => {
    let collections = 0;
    const onChunk = chunkCollector(100, () => collections++);
    for (const size of [40, 40, 19]) onChunk(size);
    expect(collections).toBe(0);
    onChunk(1);
    expect(collections).toBe(1);
    onChunk(250);
    expect(collections).toBe(2);
    for (let i = 0; i < 10; i++) onChunk(10);
    expect(collections).toBe(3);
  });

  it('runs a real young-generation collection of V8 without any command-line flag', async () => {
    expect(process.execArgv.join(' ')).not.toContain('expose-gc');
    const kinds: number[] = [];
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) kinds.push((entry.detail as { kind: number }).kind);
    });
    observer.observe({ entryTypes: ['gc'] });
    const onChunk = chunkCollector();
    for (let i = 0; i < 3; i++) onChunk(COLLECT_EVERY_BYTES);
    // The observer hears of collections asynchronously, later on a loaded machine: wait for them.
    const minor = () => kinds.filter((k) => k === constants.NODE_PERFORMANCE_GC_MINOR).length;
    for (const until = Date.now() + 2000; minor() < 3 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    observer.disconnect();
    expect(minor()).toBeGreaterThanOrEqual(3);
  });
});

describe('chunkCollector, what it reads after a young collection', () => {
  it("finds the dead buffers' memory already given back (V8 sweeps them during the collection, not after it)", () => {
    const MiB = 1024 * 1024;
    const readings: number[] = [];
    const read = () => {
      const now = process.memoryUsage().arrayBuffers;
      readings.push(now);
      return now;
    };
    const count = chunkCollector(4 * MiB, undefined, read);
    const base = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 40; i++) {
      // 4 MiB of chunks, dead at once, as a stream's are.
      for (let j = 0; j < 256; j++) Buffer.allocUnsafeSlow(16 * 1024);
      count(4 * MiB);
    }
    expect(readings).toHaveLength(40);
    expect(readings.filter((r) => r - base > 2 * MiB)).toEqual([]);
  });
});

describe('meterChunks', () => {
  it('counts every byte and keeps the dead chunks of a fast stream to a few MB', async () => {
    // Measured on Node 24: ~3 MB retained with the collections, ~65 MB without them.
    const total = 512 * 1024 * 1024;
    const stream = syntheticStream(total);
    const meter = { bytes: 0 };
    const baseline = process.memoryUsage().arrayBuffers;
    let peak = 0;
    meterChunks(stream, meter);
    stream.on('data', () => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline)));
    await new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject));
    expect(meter.bytes).toBe(total);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('chunkCollector, the full collection', () => {
  const MB = 1024 * 1024;
  /** Per interval of stream, the collections asked for ('young', then 'full' if taken), Buffer memory at `levels[i]` bytes. */
  function run(levels: readonly number[]): string[][] {
    const asked: string[][] = [];
    let level = 0;
    const count = chunkCollector(10, (full) => asked.at(-1)!.push(full ? 'full' : 'young'), () => level);
    for (const l of levels) {
      level = l;
      asked.push([]);
      count(10);
    }
    return asked;
  }
  const fullAt = (asked: string[][]) => asked.flatMap((a, i) => (a.includes('full') ? [i] : []));

  it('is never taken while Buffer memory stays flat, whatever its level (held buffers are not dead ones)', () => {
    expect(run(Array(50).fill(40 * MB))).toEqual(Array(50).fill(['young']));
  });

  it('is taken once memory stays more than FULL_ABOVE_BYTES over its lowest after young collections, then counted from after it', () => {
    // Promoted dead chunks: +4 MiB per interval that young collections do not free.
    const asked = run([...Array(12).keys()].map((i) => 10 * MB + i * 4 * MB));
    expect(FULL_ABOVE_BYTES).toBe(8 * MB);
    // 10 → 18 MiB is 8 over (not more); at 22 MiB, full; the lowest is then 22 MiB (the fake frees nothing), so the next at 34 MiB.
    expect(fullAt(asked)).toEqual([3, 6, 9]);
    expect(asked[3]).toEqual(['young', 'full']);
    expect(asked.every((a) => a[0] === 'young')).toBe(true);
  });

  it('follows the lowest down: growth is measured from the least Buffer memory seen since the last full one', () => {
    expect(fullAt(run([40 * MB, 5 * MB, 12 * MB, 14 * MB]))).toEqual([3]);
  });
});
