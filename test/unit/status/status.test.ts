/**
 * status from /status answers to rows, table and JSON: the answers are the verbatim fixtures of
 * test/fixtures/status/ (placed at the ordinals a test needs), the time is fixed, and the table
 * and the JSON are compared with reviewed golden files (golden/, edited by hand: a run never writes them).
 */
import { readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PeerReport, parsePeerStatus } from '../../../agent/cluster/peer-status.js';
import { formatAge, formatBytes, renderJson, renderTable } from '../../../agent/status/render.js';
import { buildStatus, exitCodeOf } from '../../../agent/status/rows.js';
import type { StatusConfig } from '../../../agent/status/settings.js';
import { gather, runStatus } from '../../../agent/status/status.js';
import { expectGolden } from '../../golden.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/status');
const NOW = new Date('2026-11-25T11:05:00.000Z');
const host = (n: number) => `mysql-${n}.mysql`;

/** A fixture's answer as ordinal `n` gave it (its pod name and ordinal rewritten), with `patch` on top. */
function answer(n: number, name: string, patch: Record<string, unknown> = {}): PeerReport {
  const body = { ...(JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Record<string, unknown>), pod: `mysql-${n}`, ordinal: n, ...patch };
  return { ordinal: n, host: host(n), status: parsePeerStatus(body), error: null };
}
const silent = (n: number, error: string): PeerReport => ({ ordinal: n, host: host(n), status: null, error });

const healthy = () => buildStatus([answer(0, 'primary'), answer(1, 'replica-cloned-backed-up'), answer(2, 'replica-caught-up')], 'mysql', NOW);
const troubled = () =>
  buildStatus(
    [
      answer(0, 'primary-serving-backup'),
      answer(1, 'replica-sql-stopped'),
      answer(2, 'replica-lagging', { gtid_executed: '0-100-31' }),
      silent(3, 'connect ECONNREFUSED 10.244.1.7:3307'),
      answer(4, 'replica-position'),
    ],
    'mysql',
    NOW,
  );

describe('rows', () => {
  it('all healthy: exit 0, replicas 0 transactions behind, backup and clone carried', () => {
    const s = healthy();
    expect(s.healthy).toBe(true);
    expect(exitCodeOf(s)).toBe(0);
    expect(s.pods.map((p) => [p.pod, p.role, p.healthy, p.behind_primary?.transactions ?? null])).toEqual([
      ['mysql-0', 'primary', true, null],
      ['mysql-1', 'replica', true, 0],
      ['mysql-2', 'replica', true, 0],
    ]);
    expect(s.pods[1]).toMatchObject({
      source_host: 'mysql-0.mysql',
      backup: { finished_at: '2026-11-25T10:58:04.907Z', bytes: 9175040, failure: null },
      clone: { source_host: 'mysql-0.mysql', source_ordinal: 0, choice: 'auto', bytes: 9437184 },
    });
  });

  it('a stopped SQL thread, a lagging replica, a silent pod: exit 1, each with its problem and its distance', () => {
    const s = troubled();
    expect(exitCodeOf(s)).toBe(1);
    const [p0, p1, p2, p3, p4] = s.pods;
    expect(p0).toMatchObject({ healthy: true, problems: [], backup: { finished_at: null, bytes: 52428800 } });
    expect(p1).toMatchObject({ healthy: false, problems: ['not ready: SQL thread No'], sql_running: 'No', behind_primary: { transactions: 5, reason: null } });
    expect(p2).toMatchObject({ healthy: false, seconds_behind: 95, behind_primary: { transactions: 2, reason: null } });
    expect(p2!.problems).toEqual(['not ready: 95 s behind the primary (READY_MAX_LAG=30)']);
    expect(p3).toMatchObject({ answered: false, pod: 'mysql-3', role: null, healthy: false, problems: ['no answer: connect ECONNREFUSED 10.244.1.7:3307'] });
    expect(p4).toMatchObject({ healthy: true, behind_primary: { transactions: null, reason: 'replicates by binlog position' } });
  });

  it('counts MySQL GTID sets, and calls a replica read after the primary caught up rather than ahead', () => {
    const u = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    const s = buildStatus(
      [
        answer(0, 'primary', { gtid_executed: `${u}:1-120` }),
        answer(1, 'replica-caught-up', { gtid_executed: `${u}:1-97` }),
        answer(2, 'replica-caught-up', { gtid_executed: `${u}:1-121` }),
        answer(3, 'replica-caught-up', { gtid_executed: `${u}:1-50,4f22ab58-82db-22f2-af44-d91bb0530673:1-3` }),
      ],
      'mysql',
      NOW,
    );
    expect(s.pods.map((p) => p.behind_primary)).toEqual([
      null,
      { transactions: 23, reason: null },
      { transactions: 0, reason: null },
      { transactions: null, reason: "diverged from the primary's" },
    ]);
  });

  it('cannot count without the primary, and flags pods that answer as someone else', () => {
    const s = buildStatus([silent(0, 'getaddrinfo ENOTFOUND mysql-0.mysql'), answer(1, 'replica-caught-up'), answer(2, 'primary', { ordinal: 0 })], 'mysql', NOW);
    expect(s.pods[1]!.behind_primary).toEqual({ transactions: null, reason: 'the primary did not answer' });
    expect(s.pods[2]!.problems).toEqual(['answers as ordinal 0 (check PEER_HOST_TEMPLATE)', 'answers as primary, expected replica at ordinal 2']);
    expect(s.healthy).toBe(false);
  });

  it('names a silent pod after the others when the StatefulSet name is unknown (a template without {set}), else by its ordinal', () => {
    expect(buildStatus([answer(0, 'primary'), silent(1, 'x')], '', NOW).pods[1]!.pod).toBe('mysql-1');
    expect(buildStatus([silent(0, 'x')], '', NOW).pods[0]!.pod).toBe('ordinal 0');
  });
});

describe('rendering', () => {
  it('the healthy table', async () => {
    await expectGolden(renderTable(healthy(), { colour: false, now: NOW }), 'golden/healthy.txt', import.meta.dirname);
  });

  it('the troubled table: a row per pod, one line per problem, the verdict', async () => {
    await expectGolden(renderTable(troubled(), { colour: false, now: NOW }), 'golden/troubled.txt', import.meta.dirname);
  });

  it('the troubled JSON', async () => {
    const json = renderJson(troubled(), false);
    expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(troubled())));
    await expectGolden(json, 'golden/troubled.json', import.meta.dirname);
    expect(renderJson(troubled(), true).trimEnd().split('\n')).toHaveLength(1);
  });

  it('colours only when asked, and the colour changes no column', () => {
    const plain = renderTable(troubled(), { colour: false, now: NOW });
    const coloured = renderTable(troubled(), { colour: true, now: NOW });
    expect(plain).not.toContain('\x1b[');
    expect(coloured).toContain('\x1b[31mno\x1b[0m');
    expect(coloured).toContain('\x1b[32myes\x1b[0m');
    expect(coloured.replace(/\x1b\[[0-9;]*m/g, '')).toBe(plain);
  });

  it('shortens sizes and ages', () => {
    expect([formatBytes(999), formatBytes(9175040), formatBytes(2.5e9)]).toEqual(['999 B', '9.2 MB', '2.5 GB']);
    const ago = (s: number) => formatAge(new Date(NOW.getTime() - s * 1000).toISOString(), NOW);
    expect([ago(5), ago(600), ago(3 * 3600), ago(5 * 86400), formatAge(null, NOW)]).toEqual(['5s ago', '10m ago', '3h ago', '5d ago', 'at an unknown time']);
  });
});

describe('asking the agents (real HTTP on loopback)', () => {
  // One server on every loopback address stands for every pod: ordinal N is asked at 127.0.N.1.
  let server: Server;
  let port: number;
  const asked: string[] = [];
  const bodies: Record<string, unknown> = {};

  beforeAll(async () => {
    for (const [n, name] of [[0, 'primary'], [1, 'replica-caught-up'], [2, 'replica-caught-up'], [3, 'replica-caught-up'], [4, 'replica-caught-up']] as const) {
      bodies[`127.0.${n}.1`] = { ...JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')), pod: `mysql-${n}`, ordinal: n };
    }
    server = createServer((req, res) => {
      const who = req.socket.localAddress!.replace(/^::ffff:/, '');
      asked.push(who);
      const body = bodies[who];
      if (body === undefined) return res.writeHead(503).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const config = (podCount: number, output: Partial<StatusConfig['output']> = {}): StatusConfig => ({
    command: 'status',
    podName: 'laptop',
    ordinal: null,
    role: null,
    logLevel: 'warn',
    peerHosts: { template: '127.0.{ordinal}.1', set: '', service: 'mysql' },
    port,
    tls: null,
    timeoutMs: 1000,
    podCount,
    output: { json: false, watch: false, intervalMs: 100, noColor: false, ...output },
  });

  it('asks POD_COUNT ordinals, then the next ones while they answer', async () => {
    asked.length = 0;
    const reports = await gather(config(2));
    expect(reports.map((r) => [r.ordinal, r.status?.pod ?? r.error])).toEqual([
      [0, 'mysql-0'],
      [1, 'mysql-1'],
      [2, 'mysql-2'],
      [3, 'mysql-3'],
      [4, 'mysql-4'],
    ]);
    // Ordinal 5 answered 503, which ends the search; it is no row, and ordinal 6 is not asked.
    expect(asked.sort()).toEqual(['127.0.0.1', '127.0.1.1', '127.0.2.1', '127.0.3.1', '127.0.4.1', '127.0.5.1']);
  });

  it('--watch refreshes until stopped and returns the last verdict; not on a terminal, frames follow each other', async () => {
    const controller = new AbortController();
    let frames = 0;
    let text = '';
    const out = {
      isTTY: false,
      write: (t: string) => {
        text += t;
        if (++frames === 2) controller.abort();
      },
    };
    const code = await runStatus(config(3, { watch: true }), out, controller.signal, { now: () => NOW });
    expect(code).toBe(0);
    expect(frames).toBe(2);
    expect(text.match(/^every 0.1 s, 2026-11-25T11:05:00.000Z \(Ctrl-C to stop\)$/gm)).toHaveLength(2);
    expect(text).not.toContain('\x1b[');
  });
});
