import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type SourceRanking, cloneFromFirst, fixedCandidate, lowerOrdinals, rankCloneSources } from '../../../agent/init/clone-source.js';
import { CloneError } from '../../../agent/core/errors.js';
import { type PeerReport, parsePeerStatus, probePeers } from '../../../agent/cluster/peer-status.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/status');
const fixture = (name: string): unknown => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));
const host = (n: number) => `mysql-${n}.mysql`;
const answer = (ordinal: number, name: string): PeerReport => ({ ordinal, host: host(ordinal), status: parsePeerStatus(fixture(name)), error: null, code: null });
const down = (ordinal: number, error = 'connect ECONNREFUSED 10.0.0.1:3307'): PeerReport => ({ ordinal, host: host(ordinal), status: null, error, code: 'ECONNREFUSED' });
const order = (r: SourceRanking) => r.candidates.map((c) => c.ordinal);
const reasons = (r: SourceRanking) => Object.fromEntries(r.skipped.map((s) => [s.ordinal, s.reason]));

describe('parsePeerStatus', () => {
  it('reads what selection needs from a replica /status', () => {
    expect(parsePeerStatus(fixture('replica-sql-stopped'))).toMatchObject({
      pod: 'mysql-2',
      role: 'replica',
      ready: false,
      notReadyReason: 'SQL thread No',
      replicating: false,
      ioRunning: 'Yes',
      sqlRunning: 'No',
      secondsBehind: null,
      usesGtid: true,
      servingBackup: false,
      holdsData: true,
      gtidExecuted: '0-100-28',
      binlogStartGtid: null,
    });
  });

  it('understands an agent from before these fields: replicating from the threads, data from having replication', () => {
    const s = parsePeerStatus(fixture('replica-older-agent'));
    expect(s).toMatchObject({ replicating: true, holdsData: true, servingBackup: false, gtidExecuted: null, usesGtid: null });
  });

  it('refuses an answer that is not an agent /status', () => {
    expect(() => parsePeerStatus('<html>')).toThrow(/JSON object/);
    expect(() => parsePeerStatus({ ok: true })).toThrow(/role/);
  });
});

describe('rankCloneSources', () => {
  it('prefers the closest caught-up replica, then further ones, then the primary', () => {
    const r = rankCloneSources([answer(0, 'primary'), answer(1, 'replica-caught-up'), answer(2, 'replica-caught-up')], 60);
    expect(order(r)).toEqual([2, 1, 0]);
    expect(r.skipped).toEqual([]);
    expect(r.candidates.at(-1)!.why).toContain('primary');
  });

  it('skips a replica whose agent does not answer, naming the error (node1 stopped)', () => {
    const r = rankCloneSources([answer(0, 'primary'), down(1), answer(2, 'replica-caught-up')], 60);
    expect(order(r)).toEqual([2, 0]);
    expect(reasons(r)[1]).toBe('no answer: connect ECONNREFUSED 10.0.0.1:3307');
  });

  it('skips a replica whose SQL thread is stopped (Seconds_Behind_Master NULL)', () => {
    const r = rankCloneSources([answer(0, 'primary'), answer(1, 'replica-caught-up'), answer(2, 'replica-sql-stopped')], 60);
    expect(order(r)).toEqual([1, 0]);
    expect(reasons(r)[2]).toBe('not replicating (IO thread Yes, SQL thread No)');
  });

  it('skips a replica further behind than CLONE_MAX_LAG, and takes it within the limit', () => {
    const reports = [answer(0, 'primary'), answer(1, 'replica-lagging')];
    expect(reasons(rankCloneSources(reports, 60))[1]).toBe('95 s behind the primary (CLONE_MAX_LAG=60)');
    expect(order(rankCloneSources(reports, 95))).toEqual([1, 0]);
  });

  it('skips a replica that is serving a backup (it would answer 429)', () => {
    const r = rankCloneSources([answer(0, 'primary'), answer(1, 'replica-serving-backup')], 60);
    expect(order(r)).toEqual([0]);
    expect(reasons(r)[1]).toBe('serving a backup');
  });

  it('skips a replica that cannot reach the primary', () => {
    const r = rankCloneSources([down(0), answer(1, 'replica-primary-down')], 60);
    expect(order(r)).toEqual([]);
    expect(reasons(r)[1]).toMatch(/^not replicating \(IO thread Connecting/);
  });

  it('skips a busy or unready primary, leaving no candidate', () => {
    expect(reasons(rankCloneSources([answer(0, 'primary-serving-backup')], 60))[0]).toBe('primary is serving a backup');
    const unready = { ordinal: 0, host: host(0), status: { ...parsePeerStatus(fixture('primary')), ready: false, notReadyReason: 'local server does not answer' }, error: null, code: null };
    expect(reasons(rankCloneSources([unready], 60))[0]).toBe('primary not ready: local server does not answer');
  });
});

describe('fixed CLONE_SOURCE choices', () => {
  it('previous is ordinal - 1, primary is ordinal 0, a host is itself, auto is none', () => {
    expect(fixedCandidate({ kind: 'previous' }, 3, host)).toMatchObject({ ordinal: 2, host: 'mysql-2.mysql' });
    expect(fixedCandidate({ kind: 'primary' }, 3, host)).toMatchObject({ ordinal: 0, host: 'mysql-0.mysql' });
    expect(fixedCandidate({ kind: 'host', host: 'backup.example.org' }, 3, host)).toMatchObject({ ordinal: null, host: 'backup.example.org' });
    expect(fixedCandidate({ kind: 'auto' }, 3, host)).toBeNull();
  });

  it('auto asks every lower ordinal', () => {
    expect(lowerOrdinals(3, host)).toEqual([0, 1, 2].map((n) => ({ ordinal: n, host: host(n) })));
    expect(lowerOrdinals(0, host)).toEqual([]);
  });
});

describe('cloneFromFirst', () => {
  const ranking = (ordinals: number[], skipped: SourceRanking['skipped'] = []): SourceRanking => ({
    candidates: ordinals.map((n) => ({ ordinal: n, host: host(n), why: 'test' })),
    skipped,
  });

  it('moves on from a busy candidate (429) and one that breaks mid-stream, to the next', async () => {
    const tried: number[] = [];
    const failed: string[] = [];
    const out = await cloneFromFirst(
      ranking([2, 1, 0]),
      async (c) => {
        tried.push(c.ordinal!);
        if (c.ordinal === 2) throw new CloneError('peer mysql-2 is busy serving another backup (HTTP 429)', true);
        if (c.ordinal === 1) throw new CloneError('stream from mysql-1 broke after 1000 bytes', true);
        return 'cloned';
      },
      (c, err, remaining) => failed.push(`${c.ordinal}:${remaining}:${(err as Error).message}`),
    );
    expect(out).toMatchObject({ result: 'cloned', candidate: { ordinal: 0 } });
    expect(tried).toEqual([2, 1, 0]);
    expect(failed).toEqual(['2:2:peer mysql-2 is busy serving another backup (HTTP 429)', '1:1:stream from mysql-1 broke after 1000 bytes']);
  });

  it('stops at once on a fatal error (a refused token)', async () => {
    const tried: number[] = [];
    const fatal = new CloneError('peer refused our token (HTTP 401)', false);
    await expect(
      cloneFromFirst(ranking([2, 1]), async (c) => {
        tried.push(c.ordinal!);
        throw fatal;
      }, () => {}),
    ).rejects.toBe(fatal);
    expect(tried).toEqual([2]);
  });

  it('rethrows the only candidate’s own error, keeping Retry-After', async () => {
    const busy = Object.assign(new CloneError('busy (HTTP 429)', true), { retryAfterMs: 30_000 });
    await expect(cloneFromFirst(ranking([0]), async () => Promise.reject(busy), () => {})).rejects.toBe(busy);
  });

  it('names every candidate and skipped peer with its reason when all fail; retryable', async () => {
    const err = await cloneFromFirst(
      ranking([1, 0], [{ ordinal: 2, host: host(2), reason: 'serving a backup' }]),
      async (c) => Promise.reject(Object.assign(new CloneError(`fail ${c.ordinal}`, true), { retryAfterMs: 5000 + (c.ordinal ?? 0) })),
      () => {},
    ).catch((e: unknown) => e as CloneError & { retryAfterMs?: number });
    expect(err).toBeInstanceOf(CloneError);
    expect(err.retryable).toBe(true);
    expect(err.message).toBe(
      'no peer could be cloned from: ordinal 2 (mysql-2.mysql): serving a backup; ordinal 1 (mysql-1.mysql): fail 1; ordinal 0 (mysql-0.mysql): fail 0',
    );
    expect(err.retryAfterMs).toBe(5000);
  });

  it('fails retryably, listing the reasons, when no peer is a candidate', async () => {
    const err = await cloneFromFirst(ranking([], [{ ordinal: 0, host: host(0), reason: 'no answer: connect ECONNREFUSED' }]), async () => 1, () => {}).catch(
      (e: unknown) => e as CloneError,
    );
    expect(err.retryable).toBe(true);
    expect(err.message).toBe('no peer to clone from: ordinal 0 (mysql-0.mysql): no answer: connect ECONNREFUSED');
  });
});

describe('probePeers', () => {
  it('asks all peers at once and reports each failure instead of rejecting', async () => {
    const started: string[] = [];
    const reports = await probePeers(
      [
        { ordinal: 0, host: 'a' },
        { ordinal: 1, host: 'b' },
        { ordinal: 2, host: 'c' },
      ],
      3307,
      1000,
      async (h) => {
        started.push(h);
        await new Promise((r) => setTimeout(r, 20));
        if (h === 'b') throw new Error('connect ECONNREFUSED');
        if (h === 'c') return { role: 'nonsense' };
        return fixture('primary');
      },
    );
    expect(started).toEqual(['a', 'b', 'c']);
    expect(reports.map((r) => [r.ordinal, r.status?.role ?? null, r.error])).toEqual([
      [0, 'primary', null],
      [1, null, 'connect ECONNREFUSED'],
      [2, null, '/status has no role'],
    ]);
  });
});
