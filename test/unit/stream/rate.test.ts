import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { nextTurn, rateCap } from '../../../agent/stream/rate.js';

describe('nextTurn', () => {
  it('spaces chunks by their size at the rate', () => {
    expect(nextTurn(1000, 1000, 1e6, 10e6)).toEqual({ at: 1000, due: 1100 });
    expect(nextTurn(1100, 1050, 1e6, 10e6)).toEqual({ at: 1100, due: 1200 });
    // A little late (a busy event loop): the lateness is made up for.
    expect(nextTurn(1200, 1230, 1e6, 10e6)).toEqual({ at: 1200, due: 1300 });
  });

  it('makes up for no stall longer than the slack: no catch-up burst', () => {
    // Due at 1100, but the source was idle until 5000: the next chunk goes at once, the one after a full turn later.
    expect(nextTurn(1100, 5000, 1e6, 10e6)).toEqual({ at: 4750, due: 4850 });
  });
});

let server: Server | undefined;
afterEach(() => server?.close());

describe('rateCap over real TCP on loopback', () => {
  it('holds 20 MB/s within 5% over 3 s, measured at the receiver, with the source backpressured', async () => {
    let received = 0;
    let firstAt = 0;
    let lastAt = 0;
    server = createServer((s) =>
      s.on('data', (d: Buffer) => {
        if (received === 0) firstAt = performance.now();
        received += d.length;
        lastAt = performance.now();
      }),
    );
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const total = 60e6;
    let produced = 0;
    let aheadMax = 0;
    const chunk = Buffer.alloc(64 * 1024, 7);
    const source = new Readable({
      read() {
        aheadMax = Math.max(aheadMax, produced - socket.bytesWritten);
        if (produced >= total) return this.push(null);
        produced += chunk.length;
        this.push(chunk);
      },
    });
    await pipeline(source, rateCap(20), socket);
    await new Promise((r) => setTimeout(r, 100));
    const rate = received / 1e6 / ((lastAt - firstAt) / 1000);
    expect(received).toBe(Math.ceil(total / chunk.length) * chunk.length);
    expect(rate).toBeGreaterThan(19);
    expect(rate).toBeLessThan(21);
    // Nothing piles up ahead of the wire: a few chunks in the streams' queues, not seconds of data.
    expect(aheadMax).toBeLessThan(2 * 1024 * 1024);
  }, 20_000);
});
