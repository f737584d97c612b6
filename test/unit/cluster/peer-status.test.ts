import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchStatus, probePeers } from '../../../agent/cluster/peer-status.js';

let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url !== '/status') return res.writeHead(404).end();
    const who = req.headers.host?.split(':')[0];
    if (who === '127.0.0.1') return res.writeHead(200, { 'content-type': 'application/json' }).end('{"role":"primary","ready":true}');
    if (who === 'localhost') return res.writeHead(500).end('{"error":"boom"}');
    // Any other name: never answers.
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('fetchStatus', () => {
  it('returns the parsed body of a 200', async () => {
    expect(await fetchStatus('127.0.0.1', port, 2000)).toEqual({ role: 'primary', ready: true });
  });

  it('fails on another HTTP status and on a refused connection', async () => {
    await expect(fetchStatus('localhost', port, 2000)).rejects.toThrow('/status answered HTTP 500');
    await expect(fetchStatus('127.0.0.1', 1, 2000)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('gives up on a peer that accepts but never answers, within the timeout', async () => {
    const started = Date.now();
    const [report] = await probePeers([{ ordinal: 1, host: '127.0.0.1' }], port, 300, (_h, p, t) => fetchStatus('127.1', p, t));
    expect(report!.error).toBe('no answer within 0.3 s (ETIMEDOUT)');
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
