import { PerformanceObserver, constants } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { COLLECT_EVERY_BYTES, chunkCollector } from '../../../agent/stream/meter.js';

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
    await new Promise((r) => setTimeout(r, 50));
    observer.disconnect();
    expect(kinds.filter((k) => k === constants.NODE_PERFORMANCE_GC_MINOR).length).toBeGreaterThanOrEqual(3);
  });
});
