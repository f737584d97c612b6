import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { repeatUntilStopped } from '../../../agent/init/writeback.js';

describe('writing back while extracting', () => {
  it('runs the flush again a pause after each run ends, never two at once, until stopped', async () => {
    let runs = 0;
    let inFlight = 0;
    let most = 0;
    const stop = repeatUntilStopped(async () => {
      runs++;
      most = Math.max(most, ++inFlight);
      await delay(5);
      inFlight--;
    }, 5);
    await delay(120);
    await stop();
    const after = runs;
    expect(after).toBeGreaterThanOrEqual(4);
    expect(most).toBe(1);
    await delay(40);
    expect(runs).toBe(after);
  });
  it('stop waits for the run in progress, and a stop before the first pause runs nothing', async () => {
    const events: string[] = [];
    const stop = repeatUntilStopped(async () => {
      events.push('start');
      await delay(60);
      events.push('end');
    }, 10);
    await delay(30);
    await stop();
    events.push('stopped');
    expect(events).toEqual(['start', 'end', 'stopped']);
    let ran = false;
    await repeatUntilStopped(async () => void (ran = true), 10)();
    await delay(30);
    expect(ran).toBe(false);
  });
  it('a failed run is let go: the next one follows, and stop resolves', async () => {
    let runs = 0;
    const stop = repeatUntilStopped(async () => {
      runs++;
      throw new Error('sync: no such file');
    }, 5);
    await delay(60);
    await expect(stop()).resolves.toBeUndefined();
    expect(runs).toBeGreaterThanOrEqual(3);
  });
});
