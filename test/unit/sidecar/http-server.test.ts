/**
 * The sidecar's HTTP timeouts, on a real server on loopback: port 3307 is open to every pod, so
 * a client that sends its headers slowly or keeps an idle connection loses its socket.
 */
import { connect } from 'node:net';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BackupService } from '../../../agent/sidecar/backup.js';
import { HTTP_TIMEOUTS, buildHttpServer } from '../../../agent/sidecar/http-server.js';

let app: ReturnType<typeof buildHttpServer>;
let port: number;

beforeEach(async () => {
  app = buildHttpServer({
    token: null,
    idleTimeoutMs: 120_000,
    backups: {} as BackupService,
    status: { readiness: async () => ({ ready: true, reason: null }), status: async () => ({ pod: 'mysql-1' }), fresh: async () => {}, backupRefusal: () => null },
    log: pino({ level: 'silent' }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
afterEach(async () => {
  await app.close();
});

/** Opens a connection, writes `text`, and resolves with how long the server kept it open and what it said. */
function holdOpen(text: string): Promise<{ ms: number; answer: string }> {
  return new Promise((resolve) => {
    const started = performance.now();
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('close', () => resolve({ ms: performance.now() - started, answer }));
    socket.on('error', () => {});
  });
}

describe('HTTP timeouts', () => {
  it('closes a connection whose headers never end', async () => {
    const { ms, answer } = await holdOpen('GET /status HTTP/1.1\r\nHost: mysql-1\r\n');
    expect(ms).toBeGreaterThan(HTTP_TIMEOUTS.headersMs - 100);
    expect(ms).toBeLessThan(HTTP_TIMEOUTS.headersMs + HTTP_TIMEOUTS.checkEveryMs + 1000);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  }, 15_000);

  it('closes an idle keep-alive connection after an answer', async () => {
    const { ms, answer } = await holdOpen('GET /status HTTP/1.1\r\nHost: mysql-1\r\nConnection: keep-alive\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toContain('"pod":"mysql-1"');
    expect(ms).toBeGreaterThan(HTTP_TIMEOUTS.keepAliveMs - 100);
    expect(ms).toBeLessThan(HTTP_TIMEOUTS.keepAliveMs + 1500);
  }, 15_000);
});

describe('/status?fresh=1', () => {
  it('answers only after the next reading, and plain /status at once from the one held', async () => {
    let readings = 0;
    let nextReading = Promise.withResolvers<void>();
    const asked: number[] = [];
    const fresh = buildHttpServer({
      token: null,
      idleTimeoutMs: 120_000,
      backups: {} as BackupService,
      status: {
        readiness: async () => ({ ready: true, reason: null }),
        status: async () => ({ reading: readings }),
        fresh: (timeoutMs) => {
          asked.push(timeoutMs);
          return nextReading.promise;
        },
        backupRefusal: () => null,
      },
      log: pino({ level: 'silent' }),
    });
    try {
      const waiting = fresh.inject({ method: 'GET', url: '/status?fresh=1' });
      expect((await fresh.inject({ method: 'GET', url: '/status' })).json()).toEqual({ reading: 0 });
      let answered = false;
      void waiting.then(() => (answered = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(answered).toBe(false);
      readings = 1;
      nextReading.resolve();
      expect((await waiting).json()).toEqual({ reading: 1 });
      expect(asked).toHaveLength(1);
      // A bounded wait: a stuck refresh must not hold the caller past its own deadline.
      expect(asked[0]).toBeLessThan(3000);
      nextReading = Promise.withResolvers<void>();
    } finally {
      await fresh.close();
    }
  });
});
