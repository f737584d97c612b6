/**
 * Bounded retry with exponential backoff and jitter. Time is injected (`now`, `sleep`) so that
 * the policy is tested without waiting.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface RetryPolicy {
  /** Give up when a new attempt would start after this much time since the first. */
  readonly deadlineMs: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

export interface Clock {
  now(): number;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(ms, undefined, { signal }),
};

/** Whether an error may go away on its own, and how long the other side asked us to wait. */
export interface RetryVerdict {
  readonly retry: boolean;
  readonly afterMs?: number;
}

/** The delay before attempt `n + 1` (n >= 1): doubling from the initial delay, capped, ±20% jitter. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export class RetryExhausted extends Error {
  constructor(
    readonly attempts: number,
    readonly elapsedMs: number,
    readonly last: unknown,
  ) {
    super(`gave up after ${attempts} attempt(s) over ${Math.round(elapsedMs / 1000)} s: ${(last as Error)?.message ?? String(last)}`, {
      cause: last,
    });
  }
}

export async function retry<T>(
  attemptFn: (attempt: number) => Promise<T>,
  options: {
    readonly policy: RetryPolicy;
    readonly classify: (err: unknown) => RetryVerdict;
    readonly onRetry: (err: unknown, attempt: number, delayMs: number) => void;
    readonly signal: AbortSignal;
    readonly clock?: Clock;
  },
): Promise<T> {
  const clock = options.clock ?? realClock;
  const start = clock.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await attemptFn(attempt);
    } catch (err) {
      if (options.signal.aborted) throw err;
      const verdict = options.classify(err);
      if (!verdict.retry) throw err;
      const wait = Math.min(options.policy.maxDelayMs, Math.max(verdict.afterMs ?? 0, backoffDelay(options.policy, attempt)));
      const elapsed = clock.now() - start;
      if (elapsed + wait > options.policy.deadlineMs) throw new RetryExhausted(attempt, elapsed, err);
      options.onRetry(err, attempt, wait);
      await clock.sleep(wait, options.signal);
    }
  }
}
