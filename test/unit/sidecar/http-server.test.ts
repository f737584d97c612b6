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
    status: { readiness: async () => ({ ready: true, reason: null }), status: async () => ({ pod: 'mysql-1' }), backupRefusal: () => null },
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
