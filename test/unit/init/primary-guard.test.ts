import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type PeerReport, parsePeerStatus } from '../../../agent/cluster/peer-status.js';
import { claimsEvidence, decidePrimaryStart, evidenceOf, ordinalsToAsk } from '../../../agent/init/primary-guard.js';
import { type ClaimEvidence, parseClaimList } from '../../../agent/init/volume-claims.js';
import { continuityStatements } from '../../../agent/sidecar/primary-recovery.js';
import { parseServerVersion } from '../../../agent/mysql/server-version.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/status');
const host = (n: number) => `mysql-${n}.mysql`;
function replica(ordinal: number, name: string, patch: Record<string, unknown> = {}): PeerReport {
  const body = { ...(JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Record<string, unknown>), pod: `mysql-${ordinal}`, ...patch };
  return { ordinal, host: host(ordinal), status: parsePeerStatus(body), error: null, code: null };
}
/** Why a replica did not answer, as probePeers reports it: the message and the error's code. */
const unanswered = (ordinal: number, error: string, code: string | null): PeerReport => ({ ordinal, host: host(ordinal), status: null, error, code });
/** The name does not resolve: no such pod. */
const down = (ordinal: number) => unanswered(ordinal, `getaddrinfo ENOTFOUND ${host(ordinal)}`, 'ENOTFOUND');
/** The pod exists but its agent does not answer. */
const refused = (ordinal: number) => unanswered(ordinal, `connect ECONNREFUSED 10.244.1.7:3307`, 'ECONNREFUSED');
const timedOut = (ordinal: number) => unanswered(ordinal, 'no answer within 3 s (ETIMEDOUT)', 'ETIMEDOUT');
/** The cluster's DNS did not answer: says nothing about the pod. */
const dnsFailed = (ordinal: number) => unanswered(ordinal, `getaddrinfo EAI_AGAIN ${host(ordinal)}`, 'EAI_AGAIN');
/** The primary is gone: every replica's IO thread is reconnecting. */
const lost = (ordinal: number, gtid: string, patch: Record<string, unknown> = {}) => replica(ordinal, 'replica-primary-down', { gtid_executed: gtid, ...patch });

/** The claims of a claim list from the API (test/fixtures/kubernetes/), as init reads them. */
const KUBE_FIXTURES = join(import.meta.dirname, '../../fixtures/kubernetes');
const claimList = (name: string) => JSON.parse(readFileSync(join(KUBE_FIXTURES, `${name}.json`), 'utf8')) as { items: { metadata: { name: string } }[] };
const fromList = (list: unknown): ClaimEvidence => ({ source: 'kubernetes', claims: parseClaimList(list, 'data', 'mysql') });
/** The claims of ordinal 0 and of `ordinals`, each item as the API sends it. */
function claims(...ordinals: number[]): ClaimEvidence {
  const list = claimList('pvc-list-full-outage');
  const template = list.items.find((i) => i.metadata.name === 'data-mysql-1')!;
  const item = (n: number) => ({ ...template, metadata: { ...template.metadata, name: `data-mysql-${n}` } });
  return fromList({ ...list, items: [0, ...ordinals].map(item) });
}
const NONE: ClaimEvidence = { source: 'none' };

describe('decidePrimaryStart', () => {
  it('starts empty when no replica answers: a new cluster', () => {
    const d = decidePrimaryStart('refuse', 'auto', [down(1), down(2), down(3)], claims());
    expect(d).toMatchObject({ action: 'start-empty', decision: 'new-cluster' });
  });

  it('starts empty when replicas answer but hold no data', () => {
    const d = decidePrimaryStart('refuse', 'auto', [replica(1, 'replica-caught-up', { holds_data: false }), down(2)], claims(1));
    expect(d).toMatchObject({ action: 'start-empty', decision: 'no-data' });
  });

  it('refuses by default, in one line naming the replicas with data and every way out', () => {
    const d = decidePrimaryStart('refuse', 'auto', [lost(1, '0-100-33'), lost(2, '0-100-33'), down(3)], claims(1, 2));
    expect(d.action).toBe('refuse');
    expect(d.reason).not.toContain('\n');
    expect(d.reason).toContain('mysql-1 (mysql-1.mysql, GTID 0-100-33), mysql-2 (mysql-2.mysql, GTID 0-100-33)');
    for (const way of ["restore ordinal 0's volume", 'promote a replica', 'PRIMARY_EMPTY_START=recover', 'PRIMARY_EMPTY_START=allow']) {
      expect(d.reason).toContain(way);
    }
  });

  it('starts empty on purpose with allow, saying so', () => {
    const d = decidePrimaryStart('allow', 'auto', [lost(1, '0-100-33')], claims(1));
    expect(d).toMatchObject({ action: 'start-empty', decision: 'allowed' });
    expect(d.reason).toContain('PRIMARY_EMPTY_START=allow');
  });

  it('recovers from the most advanced replica, closest ordinal first among equals, and names those behind', () => {
    const d = decidePrimaryStart('recover', 'auto', [lost(1, '0-100-28'), lost(2, '0-100-33'), lost(3, '0-100-33'), down(4)], claims(1, 2, 3));
    expect(d.action).toBe('recover');
    if (d.action !== 'recover') return;
    expect(d.gtid).toBe('0-100-33');
    expect(d.sources.map((s) => s.ordinal)).toEqual([2, 3]);
    expect(d.behind).toEqual([{ ordinal: 1, host: host(1), gtid: '0-100-28' }]);
    expect(d.reason).toContain('needing a re-clone afterwards: ordinal 1 (0-100-28)');
  });

  it.each([
    ['refused', refused],
    ['timed out', timedOut],
    ['whose DNS lookup failed (EAI_AGAIN)', dnsFailed],
  ])('VOLUME_CLAIMS=none: refuses recovery while a replica that may exist does not answer (%s), naming it; a restart asks again', (_how, silent) => {
    // Ordinal 1 may be ahead of ordinal 2: recovering from 2 would make it skip transactions later.
    const d = decidePrimaryStart('recover', 'auto', [silent(1), lost(2, '0-100-33'), down(3)], NONE);
    expect(d.action).toBe('refuse');
    expect(d.reason).not.toContain('\n');
    expect(d.reason).toContain(`ordinal 1 (${host(1)}: ${silent(1).error})`);
    expect(d.reason).toContain('did not answer');
    expect(d.reason).toContain('restart');
    expect(d.reason).not.toContain('ordinal 3');
  });

  it('VOLUME_CLAIMS=none: recovers when every replica asked answered or does not exist (its name does not resolve)', () => {
    const d = decidePrimaryStart('recover', 'auto', [lost(1, '0-100-33'), down(2), down(3)], NONE);
    expect(d).toMatchObject({ action: 'recover', gtid: '0-100-33', sources: [{ ordinal: 1 }] });
  });

  it('refuses recovery in position mode, saying the replicas would need a re-clone', () => {
    for (const [mode, reports] of [
      ['auto', [lost(1, '', { replication: { io_running: 'Connecting', sql_running: 'Yes', seconds_behind: null, using_gtid: 'No', uses_gtid: false } })]],
      ['position', [lost(1, '0-100-33')]],
    ] as const) {
      const d = decidePrimaryStart('recover', mode, reports, claims(1));
      expect(d.action).toBe('refuse');
      expect(d.reason).toContain('needs GTID replication');
      expect(d.reason).toContain('re-clone');
    }
  });

  it('refuses recovery when a replica reports no GTID state, or the states diverged', () => {
    expect(decidePrimaryStart('recover', 'auto', [lost(1, '0-100-3'), lost(2, '0-100-3', { gtid_executed: null })], claims(1, 2)).reason).toContain(
      'mysql-2 did not report a GTID state',
    );
    expect(decidePrimaryStart('recover', 'auto', [lost(1, '0-100-5,1-101-1'), lost(2, '0-100-4,1-101-2')], claims(1, 2)).reason).toContain('diverged');
  });

  it('keeps the evidence of every replica asked', () => {
    expect(evidenceOf([lost(1, '0-100-33'), down(2)], NONE)).toEqual([
      { ordinal: 1, host: host(1), answered: true, holds_data: true, gtid_executed: '0-100-33', uses_gtid: true, replicating: false },
      { ordinal: 2, host: host(2), answered: false, error: 'getaddrinfo ENOTFOUND mysql-2.mysql', counts_as: 'absent' },
    ]);
    expect(evidenceOf([refused(1), dnsFailed(2)], NONE).map((e) => e.counts_as)).toEqual(['silent', 'silent']);
    expect(evidenceOf([down(1), refused(2), lost(3, '0-100-33')], claims(1, 3))).toEqual([
      expect.objectContaining({ ordinal: 1, answered: false, counts_as: 'silent', claim: 'data-mysql-1' }),
      expect.objectContaining({ ordinal: 2, answered: false, counts_as: 'absent', claim: null }),
      expect.objectContaining({ ordinal: 3, answered: true, claim: 'data-mysql-3' }),
    ]);
  });
});

describe('decidePrimaryStart with the replicas\' volume claims (a full outage)', () => {
  const outage = fromList(claimList('pvc-list-full-outage'));
  /** OrderedReady after a full outage: mysql-0 alone, no replica pod, no replica name. */
  const nobody = [down(1), down(2), down(3), down(4), down(5)];

  it('reads the replicas\' claims from the list, leaving out ordinal 0, other sets and other templates', () => {
    expect(outage).toEqual({
      source: 'kubernetes',
      claims: [
        { ordinal: 1, name: 'data-mysql-1', phase: 'Bound' },
        { ordinal: 2, name: 'data-mysql-2', phase: 'Bound' },
      ],
    });
    expect(fromList(claimList('pvc-list-new-cluster'))).toEqual({ source: 'kubernetes', claims: [] });
  });

  it.each(['refuse', 'recover'] as const)('refuses with %s while claimed replicas do not answer, even though no name resolves', (setting) => {
    const d = decidePrimaryStart(setting, 'auto', nobody, outage);
    expect(d.action).toBe('refuse');
    expect(d.reason).not.toContain('\n');
    expect(d.reason).toContain(
      `replicas with a volume claim did not answer: ordinal 1 (${host(1)}, claim data-mysql-1: getaddrinfo ENOTFOUND ${host(1)}), ordinal 2 (${host(2)}, claim data-mysql-2: getaddrinfo ENOTFOUND ${host(2)})`,
    );
    expect(d.reason).not.toContain('ordinal 3');
    for (const way of ["restore ordinal 0's volume", 'start the replicas', 'Ordinal 0 lost its volume', 'delete the claims', 'PRIMARY_EMPTY_START=allow']) {
      expect(d.reason).toContain(way);
    }
  });

  it('the same answers without claims (VOLUME_CLAIMS=none) look like a new cluster: the weaker, documented mode', () => {
    expect(decidePrimaryStart('refuse', 'auto', nobody, NONE)).toMatchObject({ action: 'start-empty', decision: 'new-cluster' });
    expect(decidePrimaryStart('refuse', 'auto', [refused(1), down(2)], NONE)).toMatchObject({
      action: 'start-empty',
      decision: 'new-cluster',
      reason: expect.stringContaining('count as absent (VOLUME_CLAIMS=none)'),
    });
  });

  it('starts empty on purpose with allow, naming the claims', () => {
    const d = decidePrimaryStart('allow', 'auto', nobody, outage);
    expect(d).toMatchObject({ action: 'start-empty', decision: 'allowed' });
    expect(d.reason).toContain('claim data-mysql-2');
  });

  it('a claimed replica whose name does not resolve yet (pod not created or not yet in DNS) is silent, one without a claim absent', () => {
    const d = decidePrimaryStart('recover', 'auto', [lost(1, '0-100-33'), down(2), down(3)], claims(1, 2));
    expect(d.action).toBe('refuse');
    expect(d.reason).toContain(`replicas with a volume claim did not answer: ordinal 2 (${host(2)}, claim data-mysql-2: getaddrinfo ENOTFOUND ${host(2)})`);
    expect(d.reason).toContain('one that did not may be ahead');
    expect(decidePrimaryStart('recover', 'auto', [lost(1, '0-100-33'), refused(2), down(3)], claims(1))).toMatchObject({ action: 'recover', gtid: '0-100-33' });
  });

  it('a claim never bound to a volume (Pending) holds nothing and is no reason to wait', () => {
    const pending = fromList(claimList('pvc-list-pending-claim'));
    expect(pending.source === 'kubernetes' && pending.claims.map((c) => c.name)).toEqual(['data-mysql-1', 'data-mysql-2']);
    expect(decidePrimaryStart('recover', 'auto', [lost(1, '0-100-33'), lost(2, '0-100-33'), down(7)], pending)).toMatchObject({ action: 'recover' });
  });

  it('refuses, whatever the answers, when the claims cannot be read; allow still starts empty on purpose', () => {
    const unreadable: ClaimEvidence = { source: 'unreadable', error: 'the Kubernetes API answered HTTP 403: persistentvolumeclaims is forbidden' };
    for (const [setting, reports] of [
      ['refuse', nobody],
      ['recover', nobody],
      ['recover', [lost(1, '0-100-33'), lost(2, '0-100-33')]],
    ] as const) {
      const d = decidePrimaryStart(setting, 'auto', reports, unreadable);
      expect(d.action, setting).toBe('refuse');
      expect(d.reason).toContain("the replicas' volume claims cannot be read from the Kubernetes API (the Kubernetes API answered HTTP 403: persistentvolumeclaims is forbidden)");
      expect(d.reason).toContain('VOLUME_CLAIMS=none');
    }
    expect(decidePrimaryStart('allow', 'auto', nobody, unreadable)).toMatchObject({ action: 'start-empty', decision: 'allowed' });
    expect(claimsEvidence(unreadable)).toEqual({ source: 'unreadable', error: unreadable.source === 'unreadable' && unreadable.error });
  });

  it('asks 1..PEER_PROBE_COUNT and every ordinal with a claim', () => {
    expect(ordinalsToAsk(3, claims(1, 2, 9))).toEqual([1, 2, 3, 9]);
    expect(ordinalsToAsk(2, NONE)).toEqual([1, 2]);
    expect(claimsEvidence(claims(1, 9))).toEqual({ source: 'kubernetes', names: ['data-mysql-1', 'data-mysql-9'] });
  });
});

describe('continuityStatements', () => {
  it('MariaDB: empties the binary log and sets its GTID state (verified on 10.11)', () => {
    expect(continuityStatements(parseServerVersion('10.11.19-MariaDB-0+deb12u1-log'), '0-100-33,1-101-2')).toEqual([
      'RESET MASTER',
      "SET GLOBAL gtid_binlog_state = '0-100-33,1-101-2'",
    ]);
  });

  it('MySQL: resets in the dialect of the version, then sets gtid_purged', () => {
    const set = '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-33';
    expect(continuityStatements(parseServerVersion('8.0.36'), set)).toEqual(['RESET MASTER', `SET GLOBAL gtid_purged = '${set}'`]);
    expect(continuityStatements(parseServerVersion('8.4.3'), set)).toEqual(['RESET BINARY LOGS AND GTIDS', `SET GLOBAL gtid_purged = '${set}'`]);
  });
});
