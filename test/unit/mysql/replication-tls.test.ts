/**
 * REPLICATION_TLS in every dialect: the CHANGE MASTER / CHANGE REPLICATION SOURCE of a fresh
 * clone, and the statements that give a replica set up without TLS its SSL options (nothing else),
 * for every mode and every server version, against the reviewed golden file; and when a channel
 * already has them (SHOW SLAVE/REPLICA STATUS).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PlanError } from '../../../agent/core/errors.js';
import { parseBinlogInfo } from '../../../agent/mysql/info-files.js';
import {
  REPLICATION_TLS_MODES,
  type ReplicationTls,
  planReplication,
  planStatements,
  tlsApplied,
  tlsStatements,
} from '../../../agent/mysql/replication-sql.js';
import { tlsStep } from '../../../agent/mysql/replication-setup.js';
import { SERVERS, lacks } from '../../dialects.js';
import { expectGolden } from '../../golden.js';

const CA = '/etc/mysql-agent/tls/ca.crt';
const POSITION = parseBinlogInfo('mysql-bin.000003\t1234\n');
const source = (tls: ReplicationTls) => ({ host: 'mysql-0.mysql', port: 3306, user: 'repl', password: 'secret-pw', connectRetrySeconds: 10, tls });

function render(): string {
  const lines = ['# REPLICATION_TLS per dialect', '', `TLS_DIR=/etc/mysql-agent/tls; a clone of the primary at mysql-bin.000003:1234 (position mode).`, ''];
  for (const [name, server] of SERVERS) {
    lines.push(`## ${name}`, '');
    for (const mode of REPLICATION_TLS_MODES) {
      const tls = { mode, caFile: CA };
      const fresh = planStatements(planReplication(server, POSITION, 'position', source(tls))).find((s) => s.sql.startsWith('CHANGE'))!;
      const upgrade = tlsStatements(server.version, tls);
      lines.push(`### ${mode}`, '', 'fresh clone:', '', '```sql', `${fresh.shown};`, '```', '', 'a replica set up otherwise, once:', '', '```sql', ...upgrade.map((s) => `${s.shown};`), '```', '');
      for (const s of [fresh, ...upgrade]) expect(s.sql, `${name} ${mode}`).not.toMatch(lacks(name));
    }
  }
  return lines.join('\n');
}

describe('REPLICATION_TLS statements', () => {
  it('match the golden file for every server version and mode', async () => {
    await expectGolden(render(), join(import.meta.dirname, '../../fixtures/replication-tls/expected.md'));
  });

  it('leave a fresh channel without TLS as before (no SSL option at all)', () => {
    for (const [, server] of SERVERS) {
      const off = planStatements(planReplication(server, POSITION, 'position', source({ mode: 'off', caFile: null })));
      expect(off.map((s) => s.sql).join('\n')).not.toMatch(/SSL/);
    }
  });

  it('refuse to verify without a CA file', () => {
    expect(() => tlsStatements(SERVERS[0]![1].version, { mode: 'verify-ca', caFile: null })).toThrow(PlanError);
  });

  it('escape the CA path as a string, never pasted', () => {
    const [, change] = tlsStatements(SERVERS[5]![1].version, { mode: 'verify-ca', caFile: "/x/it's\\ca.crt" });
    expect(change!.sql).toBe("CHANGE MASTER TO MASTER_SSL=1, MASTER_SSL_CA='/x/it\\'s\\\\ca.crt', MASTER_SSL_VERIFY_SERVER_CERT=0");
  });
});

describe('tlsApplied', () => {
  const tls = (mode: ReplicationTls['mode']): ReplicationTls => ({ mode, caFile: CA });
  it('tells a channel without TLS from one with the mode asked for', () => {
    const none = { allowed: 'No', caFile: '', verifyServerCert: 'No' };
    expect(tlsApplied(none, tls('off'))).toBe(true);
    expect(tlsApplied(none, tls('required'))).toBe(false);
    expect(tlsApplied({ allowed: 'Yes', caFile: '', verifyServerCert: 'No' }, tls('required'))).toBe(true);
    expect(tlsApplied({ allowed: 'Yes', caFile: CA, verifyServerCert: 'No' }, tls('verify-ca'))).toBe(true);
    expect(tlsApplied({ allowed: 'Yes', caFile: CA, verifyServerCert: 'No' }, tls('verify-identity'))).toBe(false);
    expect(tlsApplied({ allowed: 'Yes', caFile: '/old/ca.crt', verifyServerCert: 'No' }, tls('verify-ca'))).toBe(false);
    expect(tlsApplied({ allowed: 'Yes', caFile: CA, verifyServerCert: 'Yes' }, tls('verify-identity'))).toBe(true);
    // MySQL without SSL support says Ignored: never taken for TLS in use.
    expect(tlsApplied({ allowed: 'Ignored', caFile: '', verifyServerCert: 'No' }, tls('required'))).toBe(false);
  });
});

describe('tlsStep: a replica configured earlier, restarted with REPLICATION_TLS', () => {
  const none = { allowed: 'No', caFile: '', verifyServerCert: 'No' };
  const verified = { allowed: 'Yes', caFile: CA, verifyServerCert: 'No' };
  const verifyCa: ReplicationTls = { mode: 'verify-ca', caFile: CA };
  const record = (mode: string, state: 'applying' | 'applied' = 'applied') => ({ state, mode, ca_file: CA, at: '2026-12-01T00:00:00Z' });
  it('never touches a channel when TLS was never asked for', () => {
    expect(tlsStep(null, verified, { mode: 'off', caFile: CA })).toBe('keep');
  });
  it('applies the SSL options to a channel without them, once', () => {
    expect(tlsStep(null, none, verifyCa)).toBe('apply');
    expect(tlsStep(record('verify-ca', 'applying'), none, verifyCa)).toBe('apply');
    expect(tlsStep(record('verify-ca'), none, verifyCa)).toBe('keep');
  });
  it('records a channel that already has them, and applies a changed mode (off included)', () => {
    expect(tlsStep(null, verified, verifyCa)).toBe('record');
    expect(tlsStep(record('verify-ca'), verified, { mode: 'verify-identity', caFile: CA })).toBe('apply');
    expect(tlsStep(record('verify-ca'), verified, { mode: 'off', caFile: CA })).toBe('apply');
  });
});
