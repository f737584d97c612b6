/**
 * A cap on a stream's rate in MB/s (BACKUP_MAX_RATE, CLONE_MAX_RATE), applied where the bytes
 * meet the wire. A chunk is passed on only when its turn comes, and the next one is asked for
 * only then, so what is upstream waits (backpressure) instead of being buffered here.
 */
import { Transform } from 'node:stream';

/** Lateness forgiven (a busy event loop, timer slop): a stall longer than this is not made up for; the burst after one is at most this long at the cap. */
const SLACK_MS = 250;

/**
 * When a chunk of `bytes` may go, and when the one after it may: time owed accumulates, time
 * not used is lost beyond SLACK_MS (no catch-up burst after a stall).
 */
export function nextTurn(due: number, now: number, bytes: number, bytesPerSecond: number): { readonly at: number; readonly due: number } {
  const at = Math.max(due, now - SLACK_MS);
  return { at, due: at + (bytes / bytesPerSecond) * 1000 };
}

/** A pass-through held to `mbPerSecond` (MB = 10^6 bytes). */
export function rateCap(mbPerSecond: number, now: () => number = () => performance.now()): Transform {
  const rate = mbPerSecond * 1e6;
  // The first chunk's turn is now: no credit before the stream begins.
  let due: number | null = null;
  return new Transform({
    // One chunk in flight: highWaterMark 0 on the writable side keeps the queue here empty.
    writableHighWaterMark: 0,
    transform(chunk: Buffer, _encoding, done) {
      const turn = nextTurn(due ?? now(), now(), chunk.length, rate);
      due = turn.due;
      const wait = turn.at - now();
      if (wait <= 0) return done(null, chunk);
      setTimeout(() => done(null, chunk), wait);
    },
  });
}
