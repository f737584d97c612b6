import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../../agent/mysql/db.js';
import { RECOVERY_RECORD, type RecoveryRecord } from '../../../agent/core/records.js';
import { ensurePrimaryContinuity } from '../../../agent/sidecar/primary-recovery.js';
import type { ServerFacts } from '../../../agent/mysql/replication-sql.js';
import { parseServerVersion } from '../../../agent/mysql/server-version.js';
import { SERVERS, lacks } from '../../dialects.js';

const MARIADB: ServerFacts = { version: parseServerVersion('10.11.19-MariaDB-0+deb12u1-log'), gtidMode: true };
const MYSQL: ServerFacts = { version: parseServerVersion('8.4.3'), gtidMode: true };
const UUID = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const log = pino({ level: 'silent' });

/** A server that answers the few queries the sidecar asks and records the statements it is given. */
function fakeServer(state: { gtid: string; replicatesFrom?: string; threads?: 'Yes' | 'No' }) {
  const ran: string[] = [];
  const db: Db = {
    async query(sql) {
      if (/^SHOW (SLAVE|REPLICA) STATUS$/.test(sql)) {
        if (!state.replicatesFrom) return [];
        const threads = state.threads ?? 'Yes';
        return [{ Master_Host: state.replicatesFrom, Source_Host: state.replicatesFrom, Slave_IO_Running: threads, Replica_IO_Running: threads, Slave_SQL_Running: threads, Replica_SQL_Running: threads }];
      }
      if (/^RESET (SLAVE|REPLICA) ALL$/.test(sql)) delete state.replicatesFrom;
      if (sql.startsWith('SELECT @@GLOBAL.gtid_')) return [{ g: state.gtid }];
      ran.push(sql);
      const set = /^SET GLOBAL gtid_(?:binlog_state|purged) = '(.*)'$/.exec(sql);
      if (/^RESET (MASTER|BINARY LOGS AND GTIDS)$/.test(sql)) state.gtid = '';
      else if (set) state.gtid = set[1]!;
      return [];
    },
    end: async () => {},
  };
  return { db, ran };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'recovery-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function record(gtid: string, continuity: RecoveryRecord['continuity'] = null): Promise<void> {
  const r: RecoveryRecord = { decision: 'recover', reason: 'test', source: { host: 'mysql-1.mysql', ordinal: 1 }, gtid, behind: [], continuity };
  await writeFile(join(dir, RECOVERY_RECORD), JSON.stringify(r));
}
const saved = async () => JSON.parse(await readFile(join(dir, RECOVERY_RECORD), 'utf8')) as RecoveryRecord;

describe('ensurePrimaryContinuity', () => {
  it('does nothing on a primary that was not rebuilt', async () => {
    const { db, ran } = fakeServer({ gtid: '' });
    expect(await ensurePrimaryContinuity({ db, server: MARIADB, dataDir: dir, log })).toEqual({ state: 'none' });
    expect(ran).toEqual([]);
  });

  it('MariaDB, empty binary log: resets it, sets the state, and records it', async () => {
    await record('0-100-33');
    const server = { gtid: '' };
    const { db, ran } = fakeServer(server);
    expect(await ensurePrimaryContinuity({ db, server: MARIADB, dataDir: dir, log })).toEqual({ state: 'configured', how: 'applied' });
    expect(ran).toEqual(['RESET MASTER', "SET GLOBAL gtid_binlog_state = '0-100-33'"]);
    expect((await saved()).continuity).toMatchObject({ how: 'applied', statements: ran });
    // Once: the next start applies nothing.
    const again = fakeServer(server);
    expect(await ensurePrimaryContinuity({ db: again.db, server: MARIADB, dataDir: dir, log })).toEqual({ state: 'configured', how: 'recorded-earlier' });
    expect(again.ran).toEqual([]);
  });

  it('finishes, without repeating, after a stop between the statements and the record', async () => {
    await record('0-100-33', { how: 'applying', statements: [], at: '2026-01-01T00:00:00Z' });
    const { db, ran } = fakeServer({ gtid: '0-100-35' });
    expect(await ensurePrimaryContinuity({ db, server: MARIADB, dataDir: dir, log })).toEqual({ state: 'configured', how: 'found-on-server' });
    expect(ran).toEqual([]);
    expect((await saved()).continuity?.how).toBe('found-on-server');
  });

  it('applies again after a stop between RESET MASTER and SET', async () => {
    await record('0-100-33', { how: 'applying', statements: [], at: '2026-01-01T00:00:00Z' });
    const { db, ran } = fakeServer({ gtid: '' });
    expect((await ensurePrimaryContinuity({ db, server: MARIADB, dataDir: dir, log })).state).toBe('configured');
    expect(ran).toHaveLength(2);
  });

  it('MariaDB: leaves a binary log with transactions of its own alone, even numbered on from the replica', async () => {
    await record('0-100-33');
    const { db, ran } = fakeServer({ gtid: '0-100-34' });
    const out = await ensurePrimaryContinuity({ db, server: MARIADB, dataDir: dir, log });
    expect(out.state).toBe('blocked');
    expect(out.state === 'blocked' && out.reason).toContain('wrote transactions of its own (GTID state 0-100-34)');
    expect(ran).toEqual([]);
    expect((await saved()).continuity).toBeNull();
  });

  it("MySQL 8.4: clears the stopped channel the clone carried from its donor, with the GTID statements, written ahead", async () => {
    await record(`${UUID}:1-33`);
    const state = { gtid: `${UUID}:1-30`, replicatesFrom: 'mysql-0.mysql', threads: 'No' as const };
    const { db, ran } = fakeServer(state);
    expect(await ensurePrimaryContinuity({ db, server: MYSQL, dataDir: dir, log })).toEqual({ state: 'configured', how: 'applied' });
    expect(ran).toEqual(['STOP REPLICA', 'RESET REPLICA ALL', 'RESET BINARY LOGS AND GTIDS', `SET GLOBAL gtid_purged = '${UUID}:1-33'`]);
    expect(state.replicatesFrom).toBeUndefined();
    expect((await saved()).continuity).toMatchObject({ how: 'applied', statements: ran });
  });

  it('refuses a rebuilt primary that replicates from someone', async () => {
    await record('0-100-33');
    const { db, ran } = fakeServer({ gtid: '', replicatesFrom: 'mysql-0.mysql' });
    const out = await ensurePrimaryContinuity({ db, server: MARIADB, dataDir: dir, log });
    expect(out.state === 'blocked' && out.reason).toContain('must not replicate');
    expect(ran).toEqual([]);
  });

  it('MySQL: a restored gtid_executed that lags the clone is reset to it; one with its own GTIDs is left alone', async () => {
    await record(`${UUID}:1-33`);
    const lagging = fakeServer({ gtid: `${UUID}:1-30` });
    expect((await ensurePrimaryContinuity({ db: lagging.db, server: MYSQL, dataDir: dir, log })).state).toBe('configured');
    expect(lagging.ran).toEqual(['RESET BINARY LOGS AND GTIDS', `SET GLOBAL gtid_purged = '${UUID}:1-33'`]);

    await record(`${UUID}:1-33`);
    const own = fakeServer({ gtid: `${UUID}:1-33,4e11fa47-71ca-11e1-9e33-c80aa9429562:1` });
    expect((await ensurePrimaryContinuity({ db: own.db, server: MYSQL, dataDir: dir, log })).state).toBe('blocked');
    expect(own.ran).toEqual([]);
  });
});

describe('the statements a refusal tells a person to run are in the dialect of the server it is for', () => {
  const gtidServers = SERVERS.filter(([, facts]) => facts.gtidMode);
  const clearing = (name: string) =>
    name.startsWith('MySQL 8.0.30') || name.startsWith('MySQL 8.4') ? 'STOP REPLICA; RESET REPLICA ALL' : 'STOP SLAVE; RESET SLAVE ALL';

  it.each(gtidServers)('%s: a rebuilt primary that replicates', async (name, facts) => {
    await record(facts.version.flavor === 'mariadb' ? '0-100-33' : `${UUID}:1-33`);
    const { db } = fakeServer({ gtid: '', replicatesFrom: 'mysql-1.mysql' });
    const out = await ensurePrimaryContinuity({ db, server: facts, dataDir: dir, log });
    const reason = out.state === 'blocked' ? out.reason : '';
    expect(reason).toContain(`replicates (from mysql-1.mysql): ordinal 0 must not replicate; run ${clearing(name)} after checking`);
    expect(reason).not.toMatch(lacks(name));
  });

  it.each(gtidServers)('%s: a rebuilt primary that wrote transactions of its own', async (name, facts) => {
    const mariadb = facts.version.flavor === 'mariadb';
    await record(mariadb ? '0-100-33' : `${UUID}:1-33`);
    const { db } = fakeServer({ gtid: mariadb ? '0-100-34' : `${UUID}:1-33,4e11fa47-71ca-11e1-9e33-c80aa9429562:1` });
    const out = await ensurePrimaryContinuity({ db, server: facts, dataDir: dir, log });
    const reason = out.state === 'blocked' ? out.reason : '';
    expect(reason).toMatch(/then run (RESET MASTER|RESET BINARY LOGS AND GTIDS); SET GLOBAL gtid_\w+ = '.*' by hand/);
    expect(reason).not.toMatch(lacks(name));
  });
});
