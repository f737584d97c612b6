import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Clock, type RetryPolicy, type RetryVerdict, RetryExhausted, backoffDelay, retry } from '../../../agent/core/retry.js';

const POLICY: RetryPolicy = { deadlineMs: 60_000, initialDelayMs: 1_000, maxDelayMs: 10_000 };

/** A clock whose sleep only moves time forward, and remembers each wait. */
function fakeClock() {
  let now = 0;
  const sleeps: number[] = [];
  const clock: Clock = {
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
  };
  return { clock, sleeps, advance: (ms: number) => (now += ms) };
}

/** Fails `failures` times with a transient error, then returns 'ok'. */
function flaky(failures: number) {
  const fn = vi.fn(async (attempt: number) => {
    if (attempt <= failures) throw new Error(`transient ${attempt}`);
    return 'ok';
  });
  return fn;
}

const always = (verdict: RetryVerdict) => () => verdict;

describe('backoffDelay', () => {
  const half = () => 0.5;

  it('doubles from the initial delay and caps at the maximum', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(POLICY, n, half))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it('stays capped for very large attempt numbers', () => {
    expect(backoffDelay(POLICY, 5000, half)).toBe(10_000);
  });

  it('jitters by ±20%', () => {
    expect(backoffDelay(POLICY, 2, () => 0)).toBe(1600);
    expect(backoffDelay(POLICY, 2, () => 0.999999)).toBe(2400);
    expect(backoffDelay(POLICY, 6, () => 0)).toBe(8000);
  });
});

describe('retry', () => {
  beforeEach(() => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5); // no jitter
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('returns at once when the first attempt succeeds', async () => {
    const { clock, sleeps } = fakeClock();
    const onRetry = vi.fn();
    const result = await retry(async () => 42, {
      policy: POLICY,
      classify: always({ retry: true }),
      onRetry,
      signal: new AbortController().signal,
      clock,
    });
    expect(result).toBe(42);
    expect(sleeps).toEqual([]);
    expect(onRetry).not.toHaveBeenCalled();
  });

  it('succeeds after transient failures, backing off between attempts', async () => {
    const { clock, sleeps } = fakeClock();
    const fn = flaky(2);
    const onRetry = vi.fn();
    const result = await retry(fn, {
      policy: POLICY,
      classify: always({ retry: true }),
      onRetry,
      signal: new AbortController().signal,
      clock,
    });
    expect(result).toBe('ok');
    expect(fn.mock.calls.map(([n]) => n)).toEqual([1, 2, 3]);
    expect(sleeps).toEqual([1000, 2000]);
    expect(onRetry.mock.calls.map(([err, attempt, delay]) => [(err as Error).message, attempt, delay])).toEqual([
      ['transient 1', 1, 1000],
      ['transient 2', 2, 2000],
    ]);
  });

  it('gives up with RetryExhausted when the next wait would pass the deadline', async () => {
    const { clock, sleeps } = fakeClock();
    const fn = flaky(Infinity);
    const promise = retry(fn, {
      policy: { ...POLICY, deadlineMs: 5_000 },
      classify: always({ retry: true }),
      onRetry: () => {},
      signal: new AbortController().signal,
      clock,
    });
    const err = await promise.then(
      () => expect.unreachable('retry should have given up'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RetryExhausted);
    const exhausted = err as RetryExhausted;
    // waits 1000 (t=1000) and 2000 (t=3000); 3000 + 4000 > 5000 stops after attempt 3
    expect(sleeps).toEqual([1000, 2000]);
    expect(fn).toHaveBeenCalledTimes(3);
    expect(exhausted.attempts).toBe(3);
    expect(exhausted.elapsedMs).toBe(3000);
    expect(exhausted.message).toMatch(/3 attempt/);
    expect(exhausted.message).toContain('transient 3');
    expect((exhausted.last as Error).message).toBe('transient 3');
    expect(exhausted.cause).toBe(exhausted.last);
  });

  it('counts the time attempts take against the deadline', async () => {
    const { clock, advance } = fakeClock();
    const fn = vi.fn(async () => {
      advance(10_000); // each attempt takes 10 s
      throw new Error('slow failure');
    });
    await expect(
      retry(fn, {
        policy: { ...POLICY, deadlineMs: 25_000 },
        classify: always({ retry: true }),
        onRetry: () => {},
        signal: new AbortController().signal,
        clock,
      }),
    ).rejects.toBeInstanceOf(RetryExhausted);
    // t=10000 +1000 ok; t=21000 +2000 ok; t=33000 stop
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it('does not retry an error classified as permanent', async () => {
    const { clock, sleeps } = fakeClock();
    const permanent = new Error('wrong token');
    const fn = vi.fn(async () => {
      throw permanent;
    });
    const onRetry = vi.fn();
    await expect(
      retry(fn, { policy: POLICY, classify: always({ retry: false }), onRetry, signal: new AbortController().signal, clock }),
    ).rejects.toBe(permanent);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(sleeps).toEqual([]);
    expect(onRetry).not.toHaveBeenCalled();
  });

  it('passes each error to classify', async () => {
    const { clock } = fakeClock();
    const classify = vi.fn((err: unknown): RetryVerdict => ({ retry: (err as Error).message !== 'transient 2' }));
    await expect(
      retry(flaky(5), { policy: POLICY, classify, onRetry: () => {}, signal: new AbortController().signal, clock }),
    ).rejects.toThrow('transient 2');
    expect(classify.mock.calls.map(([e]) => (e as Error).message)).toEqual(['transient 1', 'transient 2']);
  });

  it('waits at least as long as the verdict asks (afterMs)', async () => {
    const { clock, sleeps } = fakeClock();
    await retry(flaky(1), {
      policy: POLICY,
      classify: always({ retry: true, afterMs: 5_000 }),
      onRetry: () => {},
      signal: new AbortController().signal,
      clock,
    });
    expect(sleeps).toEqual([5000]);
  });

  it('keeps the backoff when afterMs is shorter', async () => {
    const { clock, sleeps } = fakeClock();
    await retry(flaky(3), {
      policy: POLICY,
      classify: always({ retry: true, afterMs: 1_500 }),
      onRetry: () => {},
      signal: new AbortController().signal,
      clock,
    });
    expect(sleeps).toEqual([1500, 2000, 4000]);
  });

  it('never waits longer than maxDelayMs, even when asked to', async () => {
    const { clock, sleeps } = fakeClock();
    await retry(flaky(1), {
      policy: POLICY,
      classify: always({ retry: true, afterMs: 120_000 }),
      onRetry: () => {},
      signal: new AbortController().signal,
      clock,
    });
    expect(sleeps).toEqual([10_000]);
  });

  it('counts afterMs against the deadline', async () => {
    const { clock, sleeps } = fakeClock();
    await expect(
      retry(flaky(1), {
        policy: { ...POLICY, deadlineMs: 4_000 },
        classify: always({ retry: true, afterMs: 5_000 }),
        onRetry: () => {},
        signal: new AbortController().signal,
        clock,
      }),
    ).rejects.toBeInstanceOf(RetryExhausted);
    expect(sleeps).toEqual([]);
  });

  it('rethrows the error without retrying once the signal is aborted', async () => {
    const { clock, sleeps } = fakeClock();
    const controller = new AbortController();
    const fn = vi.fn(async () => {
      controller.abort();
      throw new Error('interrupted');
    });
    await expect(
      retry(fn, { policy: POLICY, classify: always({ retry: true }), onRetry: () => {}, signal: controller.signal, clock }),
    ).rejects.toThrow('interrupted');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(sleeps).toEqual([]);
  });
});
