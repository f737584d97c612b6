import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type PeerReport, parsePeerStatus } from '../../../agent/cluster/peer-status.js';
import { decidePrimaryStart, evidenceOf } from '../../../agent/init/primary-guard.js';
import { continuityStatements } from '../../../agent/sidecar/primary-recovery.js';
import { parseServerVersion } from '../../../agent/mysql/server-version.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/status');
const host = (n: number) => `mysql-${n}.mysql`;
function replica(ordinal: number, name: string, patch: Record<string, unknown> = {}): PeerReport {
  const body = { ...(JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Record<string, unknown>), pod: `mysql-${ordinal}`, ...patch };
  return { ordinal, host: host(ordinal), status: parsePeerStatus(body), error: null };
}
const down = (ordinal: number): PeerReport => ({ ordinal, host: host(ordinal), status: null, error: `getaddrinfo ENOTFOUND ${host(ordinal)}` });
/** The primary is gone: every replica's IO thread is reconnecting. */
const lost = (ordinal: number, gtid: string, patch: Record<string, unknown> = {}) => replica(ordinal, 'replica-primary-down', { gtid_executed: gtid, ...patch });

describe('decidePrimaryStart', () => {
  it('starts empty when no replica answers: a new cluster', () => {
    const d = decidePrimaryStart('refuse', 'auto', [down(1), down(2), down(3)]);
    expect(d).toMatchObject({ action: 'start-empty', decision: 'new-cluster' });
  });

  it('starts empty when replicas answer but hold no data', () => {
    const d = decidePrimaryStart('refuse', 'auto', [replica(1, 'replica-caught-up', { holds_data: false }), down(2)]);
    expect(d).toMatchObject({ action: 'start-empty', decision: 'no-data' });
  });

  it('refuses by default, in one line naming the replicas with data and every way out', () => {
    const d = decidePrimaryStart('refuse', 'auto', [lost(1, '0-100-33'), lost(2, '0-100-33'), down(3)]);
    expect(d.action).toBe('refuse');
    expect(d.reason).not.toContain('\n');
    expect(d.reason).toContain('mysql-1 (mysql-1.mysql, GTID 0-100-33), mysql-2 (mysql-2.mysql, GTID 0-100-33)');
    for (const way of ["restore ordinal 0's volume", 'promote a replica', 'PRIMARY_EMPTY_START=recover', 'PRIMARY_EMPTY_START=allow']) {
      expect(d.reason).toContain(way);
    }
  });

  it('starts empty on purpose with allow, saying so', () => {
    const d = decidePrimaryStart('allow', 'auto', [lost(1, '0-100-33')]);
    expect(d).toMatchObject({ action: 'start-empty', decision: 'allowed' });
    expect(d.reason).toContain('PRIMARY_EMPTY_START=allow');
  });

  it('recovers from the most advanced replica, closest ordinal first among equals, and names those behind', () => {
    const d = decidePrimaryStart('recover', 'auto', [lost(1, '0-100-28'), lost(2, '0-100-33'), lost(3, '0-100-33'), down(4)]);
    expect(d.action).toBe('recover');
    if (d.action !== 'recover') return;
    expect(d.gtid).toBe('0-100-33');
    expect(d.sources.map((s) => s.ordinal)).toEqual([2, 3]);
    expect(d.behind).toEqual([{ ordinal: 1, host: host(1), gtid: '0-100-28' }]);
    expect(d.reason).toContain('needing a re-clone afterwards: ordinal 1 (0-100-28)');
  });

  it('refuses recovery in position mode, saying the replicas would need a re-clone', () => {
    for (const [mode, reports] of [
      ['auto', [lost(1, '', { replication: { io_running: 'Connecting', sql_running: 'Yes', seconds_behind: null, using_gtid: 'No', uses_gtid: false } })]],
      ['position', [lost(1, '0-100-33')]],
    ] as const) {
      const d = decidePrimaryStart('recover', mode, reports);
      expect(d.action).toBe('refuse');
      expect(d.reason).toContain('needs GTID replication');
      expect(d.reason).toContain('re-clone');
    }
  });

  it('refuses recovery when a replica reports no GTID state, or the states diverged', () => {
    expect(decidePrimaryStart('recover', 'auto', [lost(1, '0-100-3'), lost(2, '0-100-3', { gtid_executed: null })]).reason).toContain(
      'mysql-2 did not report a GTID state',
    );
    expect(decidePrimaryStart('recover', 'auto', [lost(1, '0-100-5,1-101-1'), lost(2, '0-100-4,1-101-2')]).reason).toContain('diverged');
  });

  it('keeps the evidence of every replica asked', () => {
    expect(evidenceOf([lost(1, '0-100-33'), down(2)])).toEqual([
      { ordinal: 1, host: host(1), answered: true, holds_data: true, gtid_executed: '0-100-33', uses_gtid: true, replicating: false },
      { ordinal: 2, host: host(2), answered: false, error: 'getaddrinfo ENOTFOUND mysql-2.mysql' },
    ]);
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
