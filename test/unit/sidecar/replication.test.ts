/**
 * Replication set up once, on a MySQL 8.4 replica (no MySQL server runs here: the server is a
 * small model of the statements' documented effects; the MariaDB path runs on the rig). A clone
 * taken from a replica carries the donor's channel (on MySQL in mysql.ibd), so a fresh clone
 * gets exactly the statements `plan` shows: the inherited channel cleared, an `applying` record,
 * our statements, an `applied` record.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPLICATION_RECORD } from '../../../agent/core/records.js';
import { readCloneCoordinates } from '../../../agent/mysql/clone-info.js';
import type { Db } from '../../../agent/mysql/db.js';
import { NO_REPLICATION_TLS, type ServerFacts, planReplication, planStatements } from '../../../agent/mysql/replication-sql.js';
import { parseServerVersion } from '../../../agent/mysql/server-version.js';
import { ensureReplication } from '../../../agent/sidecar/replication.js';

const MYSQL_84: ServerFacts = { version: parseServerVersion('8.4.3'), gtidMode: true };
const SOURCE = { host: 'mysql-0.mysql', port: 3306, user: 'repl', password: 'pw', connectRetrySeconds: 10, tls: NO_REPLICATION_TLS };
const FIXTURE = join(import.meta.dirname, '../../fixtures/clones/xtrabackup-8.4-from-gtid-replica');
/** The log lines ensureReplication wrote, parsed: the rig and operators read them. */
let logged: Record<string, unknown>[] = [];
const log = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) });
const said = (msg: string) => logged.filter((l) => l.msg === msg);
const CLEARING = "the clone carries replication settings of its own (its donor's channel): clearing them first";

interface Channel {
  host: string;
  io: 'Yes' | 'No';
  sql: 'Yes' | 'No';
}

let dir: string;
beforeEach(async () => {
  logged = [];
  dir = await mkdtemp(join(tmpdir(), 'replication-test-'));
  for (const f of ['xtrabackup_slave_info', 'xtrabackup_binlog_info']) await copyFile(join(FIXTURE, f), join(dir, f));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const recordState = (): string => {
  try {
    const r = JSON.parse(readFileSync(join(dir, REPLICATION_RECORD), 'utf8')) as { state?: string };
    return r.state ?? 'legacy';
  } catch {
    return 'none';
  }
};
const saved = async () => JSON.parse(await readFile(join(dir, REPLICATION_RECORD), 'utf8')) as Record<string, unknown>;

/**
 * MySQL 8.4 as far as these statements go: RESET REPLICA ALL refuses running threads, START
 * REPLICA refuses a server without a channel. Each statement is logged with the record's state
 * at that moment; `crashAfter` makes the process "die" right after a statement.
 */
function server(state: { channel: Channel | null }, crashAfter?: RegExp) {
  const ran: { sql: string; record: string }[] = [];
  const db: Db = {
    async query(sql) {
      if (sql === 'SHOW REPLICA STATUS') {
        const c = state.channel;
        return c ? [{ Source_Host: c.host, Replica_IO_Running: c.io, Replica_SQL_Running: c.sql, Auto_Position: 1 }] : [];
      }
      ran.push({ sql, record: recordState() });
      if (sql === 'STOP REPLICA') {
        if (state.channel) state.channel = { ...state.channel, io: 'No', sql: 'No' };
      } else if (sql === 'RESET REPLICA ALL') {
        if (state.channel?.io === 'Yes' || state.channel?.sql === 'Yes') throw new Error('ER_REPLICA_CHANNEL_MUST_STOP');
        state.channel = null;
      } else if (sql.startsWith('CHANGE REPLICATION SOURCE TO')) {
        state.channel = { host: /SOURCE_HOST='([^']*)'/.exec(sql)![1]!, io: 'No', sql: 'No' };
      } else if (sql === 'START REPLICA') {
        if (!state.channel) throw new Error('ER_REPLICA_CONFIGURATION');
        state.channel = { ...state.channel, io: 'Yes', sql: 'Yes' };
      }
      if (crashAfter?.test(sql)) throw new Error('killed');
      return [];
    },
    end: async () => {},
  };
  return { db, ran };
}

const run = (db: Db) => ensureReplication({ db, server: MYSQL_84, mode: 'auto', dataDir: dir, source: SOURCE, log });

/** What `mysql-agent plan` prints for this clone on this server. */
async function planned(): Promise<string[]> {
  const clone = await readCloneCoordinates(dir);
  return planStatements(planReplication(MYSQL_84, clone!.coordinates, 'auto', SOURCE)).map((s) => s.sql);
}

describe('ensureReplication on MySQL 8.4', () => {
  it("a fresh clone carrying the donor's channel: clears it, then exactly the statements plan shows, written ahead", async () => {
    const state = { channel: { host: 'mysql-0.mysql', io: 'No', sql: 'No' } as Channel | null };
    const { db, ran } = server(state);
    expect(await run(db)).toMatchObject({ state: 'configured', how: 'applied' });
    expect(ran.map((r) => r.sql)).toEqual(await planned());
    expect(ran.map((r) => r.sql).slice(0, 2)).toEqual(['STOP REPLICA', 'RESET REPLICA ALL']);
    // The donor's channel is gone before the record says "from here on it is ours".
    expect(ran.filter((r) => /RESET REPLICA/.test(r.sql)).map((r) => r.record)).toEqual(['none']);
    expect(ran.filter((r) => /^(CHANGE|START)/.test(r.sql)).map((r) => r.record)).toEqual(['applying', 'applying']);
    expect(await saved()).toMatchObject({ state: 'applied', how: 'applied', statements: await planned().then((s) => s.map((x) => x.replace("'pw'", "'***'"))) });
    expect(state.channel).toEqual({ host: 'mysql-0.mysql', io: 'Yes', sql: 'Yes' });
    // What the log says, line by line: each statement as shown (password masked) and where it came from.
    expect(said('applying').map((l) => [l.sql, l.from, l.phase])).toEqual(
      (await planned()).map((sql) => [sql.replace("'pw'", "'***'"), 'xtrabackup_slave_info', 'replication']),
    );
    expect(said('replication mode chosen')).toEqual([expect.objectContaining({ from: 'xtrabackup_slave_info', mode: 'gtid', why: expect.stringMatching(/^auto: /) })]);
    expect(said(CLEARING)).toEqual([
      expect.objectContaining({ level: 40, source_host: 'mysql-0.mysql', io: 'No', sql: 'No' }),
    ]);
    expect(said('replication configured and started')).toEqual([expect.objectContaining({ from: 'xtrabackup_slave_info', mode: 'gtid', source_host: 'mysql-0.mysql' })]);
    expect(JSON.stringify(logged)).not.toContain("'pw'");
  });

  it('a stop between CHANGE and the applied record: adopts what it configured, START only', async () => {
    const state = { channel: null as Channel | null };
    await expect(run(server(state, /^CHANGE/).db)).rejects.toThrow('killed');
    expect(recordState()).toBe('applying');
    const again = server(state);
    expect(await run(again.db)).toMatchObject({ state: 'configured', how: 'found-on-server' });
    expect(again.ran.map((r) => r.sql)).toEqual(['START REPLICA']);
    expect(await saved()).toMatchObject({ state: 'applied', how: 'found-on-server', source_host: 'mysql-0.mysql' });
    expect(said('server replicates as configured before a stop that came ahead of the record: adopting it, not applying CHANGE MASTER again')).toEqual([
      expect.objectContaining({ level: 40, record: 'applying', source_host: 'mysql-0.mysql', io: 'No', sql: 'No' }),
    ]);
    expect(said('replication threads are stopped: starting them')).toHaveLength(1);
    // Nothing was inherited, so nothing was said about clearing it.
    expect(said(CLEARING)).toEqual([]);
  });

  it('a stop after the applying record but before CHANGE: the whole plan again (nothing replicated yet)', async () => {
    const state = { channel: { host: 'mysql-0.mysql', io: 'No', sql: 'No' } as Channel | null };
    await expect(run(server(state, /^SET GLOBAL gtid_purged/).db)).rejects.toThrow('killed');
    expect(recordState()).toBe('applying');
    const again = server(state);
    expect(await run(again.db)).toMatchObject({ state: 'configured', how: 'applied' });
    expect(again.ran.map((r) => r.sql)).toEqual(await planned());
  });

  it('a stop while clearing the inherited channel: no record yet, so the plan from the start', async () => {
    const state = { channel: { host: 'mysql-0.mysql', io: 'No', sql: 'No' } as Channel | null };
    await expect(run(server(state, /^STOP REPLICA/).db)).rejects.toThrow('killed');
    expect(recordState()).toBe('none');
    const again = server(state);
    expect(await run(again.db)).toMatchObject({ state: 'configured', how: 'applied' });
    expect(again.ran.map((r) => r.sql)).toEqual(await planned());
  });

  it.each([
    ['applied', { state: 'applied', how: 'applied' }],
    ['written by an earlier agent (no state)', { how: 'applied' }],
  ])('recorded earlier (%s): with skip-replica-start the threads are stopped, so START and nothing else', async (_what, record) => {
    await writeFile(join(dir, REPLICATION_RECORD), JSON.stringify(record));
    const state = { channel: { host: 'mysql-0.mysql', io: 'No', sql: 'No' } as Channel | null };
    const { db, ran } = server(state);
    expect(await run(db)).toEqual({ state: 'configured', how: 'recorded-earlier' });
    expect(ran.map((r) => r.sql)).toEqual(['START REPLICA']);
    expect(said('replication was configured earlier: not applying it again')).toEqual([expect.objectContaining({ record: REPLICATION_RECORD })]);
    const running = server(state);
    await run(running.db);
    expect(running.ran).toEqual([]);
  });

  it('an applied record is final: the clone info files are not read again (one here cannot be read at all)', async () => {
    await writeFile(join(dir, REPLICATION_RECORD), JSON.stringify({ state: 'applied', how: 'applied' }));
    await rm(join(dir, 'xtrabackup_slave_info'));
    await mkdir(join(dir, 'xtrabackup_slave_info'));
    const state = { channel: { host: 'mysql-0.mysql', io: 'Yes', sql: 'Yes' } as Channel | null };
    const { db, ran } = server(state);
    expect(await run(db)).toEqual({ state: 'configured', how: 'recorded-earlier' });
    expect(ran).toEqual([]);
  });

  it('a server set up by other means (no record, no info files, configured): adopted, nothing cleared', async () => {
    await rm(join(dir, 'xtrabackup_slave_info'));
    await rm(join(dir, 'xtrabackup_binlog_info'));
    const state = { channel: { host: 'mysql-0.mysql', io: 'No', sql: 'No' } as Channel | null };
    const { db, ran } = server(state);
    expect(await run(db)).toEqual({ state: 'configured', how: 'found-on-server' });
    expect(ran.map((r) => r.sql)).toEqual(['START REPLICA']);
    expect(await saved()).toMatchObject({ state: 'applied', how: 'found-on-server', source_host: 'mysql-0.mysql' });
    expect(said('server already replicates, with no record and no clone info files (set up by other means): adopting it')).toEqual([
      expect.objectContaining({ level: 40, record: 'none' }),
    ]);
  });

  it('no record, no info files, nothing configured: blocked with the reason, nothing run, no record', async () => {
    await rm(join(dir, 'xtrabackup_slave_info'));
    await rm(join(dir, 'xtrabackup_binlog_info'));
    const state = { channel: null as Channel | null };
    const { db, ran } = server(state);
    const outcome = await run(db);
    expect(outcome).toEqual({ state: 'blocked', reason: expect.stringContaining(`in DATA_DIR=${dir} and replication is not configured`) });
    expect(ran).toEqual([]);
    expect(recordState()).toBe('none');
    expect(said((outcome as { reason: string }).reason)).toEqual([expect.objectContaining({ level: 50 })]);
  });

  it('an info file that does not parse: blocked, the file left in DATA_DIR and its content logged, nothing run', async () => {
    const hostile = "CHANGE MASTER TO MASTER_LOG_FILE='x; DROP TABLE t', MASTER_LOG_POS=4;\n";
    await writeFile(join(dir, 'xtrabackup_slave_info'), hostile);
    const state = { channel: { host: 'mysql-0.mysql', io: 'No', sql: 'No' } as Channel | null };
    const { db, ran } = server(state);
    const outcome = (await run(db)) as { state: string; reason: string };
    expect(outcome.state).toBe('blocked');
    expect(outcome.reason).toMatch(/^xtrabackup_slave_info: .*; the file is left in DATA_DIR for inspection$/);
    expect(ran).toEqual([]);
    expect(recordState()).toBe('none');
    expect(await readFile(join(dir, 'xtrabackup_slave_info'), 'utf8')).toBe(hostile);
    expect(said('clone info file does not parse: replication not started')).toEqual([
      expect.objectContaining({ level: 50, file: 'xtrabackup_slave_info', content: hostile, err: outcome.reason.replace('; the file is left in DATA_DIR for inspection', '') }),
    ]);
  });

  it('a clone whose plan is refused touches nothing, inherited channel included', async () => {
    await writeFile(join(dir, 'xtrabackup_slave_info'), "SET GLOBAL gtid_slave_pos='0-100-3';\nCHANGE MASTER TO master_use_gtid=slave_pos;\n");
    const state = { channel: { host: 'mysql-0.mysql', io: 'No', sql: 'No' } as Channel | null };
    const { db, ran } = server(state);
    const outcome = (await run(db)) as { state: string; reason: string };
    expect(outcome.state).toBe('blocked');
    expect(ran).toEqual([]);
    expect(recordState()).toBe('none');
    expect(said('replication not started')).toEqual([expect.objectContaining({ level: 50, from: 'xtrabackup_slave_info', err: outcome.reason })]);
  });
});
