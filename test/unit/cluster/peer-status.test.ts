import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchStatus, parsePeerStatus, probePeers } from '../../../agent/cluster/peer-status.js';

const fixture = (name: string): unknown => JSON.parse(readFileSync(join(import.meta.dirname, '../../fixtures/status', `${name}.json`), 'utf8'));

let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer((req, res) => {
    // The callers decide on the answer: they ask for a reading begun after the question.
    if (req.url !== '/status?fresh=1') return res.writeHead(404).end();
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

describe('probePeers', () => {
  it('keeps the code of why a peer did not answer: the guard tells a missing pod from a silent one by it', async () => {
    const reports = await probePeers(
      [
        { ordinal: 1, host: '127.0.0.1' },
        { ordinal: 2, host: 'mysql-2.mysql.invalid' },
        { ordinal: 3, host: 'localhost' },
      ],
      port,
      2000,
    );
    expect(reports.map((r) => [r.ordinal, r.status?.role ?? null, r.code])).toEqual([
      [1, 'primary', null],
      [2, null, 'ENOTFOUND'],
      [3, null, null],
    ]);
    const [refused] = await probePeers([{ ordinal: 1, host: '127.0.0.1' }], 1, 2000);
    expect(refused).toMatchObject({ status: null, code: 'ECONNREFUSED', error: expect.stringContaining('ECONNREFUSED') });
    const [silent] = await probePeers([{ ordinal: 1, host: '127.0.0.1' }], port, 300, (_h, p, t) => fetchStatus('127.1', p, t));
    expect(silent).toMatchObject({ code: 'ETIMEDOUT' });
  });
});

describe('parsePeerStatus, what status shows', () => {
  it('reads the ordinal, version, source, the last backup and the clone record', () => {
    expect(parsePeerStatus(fixture('replica-cloned-backed-up'))).toMatchObject({
      pod: 'mysql-1',
      ordinal: 1,
      serverVersion: '10.11.19-MariaDB-0+deb12u1-log',
      sourceHost: 'mysql-0.mysql',
      backup: { startedAt: '2026-11-25T10:58:02.114Z', finishedAt: '2026-11-25T10:58:04.907Z', bytes: 9175040, failure: null },
      clone: { sourceHost: 'mysql-0.mysql', sourceOrdinal: 0, choice: 'auto', finishedAt: '2026-11-25T09:12:40.530Z', bytes: 9437184 },
    });
  });

  it('shows the backup being served rather than the last one', () => {
    expect(parsePeerStatus(fixture('primary-serving-backup')).backup).toEqual({ startedAt: '2026-11-25T11:04:19.000Z', finishedAt: null, bytes: 52428800, failure: null });
  });

  it('leaves out what an older agent does not say', () => {
    expect(parsePeerStatus(fixture('replica-older-agent'))).toMatchObject({ ordinal: 2, backup: null, clone: null });
    expect(parsePeerStatus({ role: 'primary' })).toMatchObject({ ordinal: null, serverVersion: null, sourceHost: null, backup: null, clone: null });
  });
});
