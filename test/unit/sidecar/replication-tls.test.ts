/**
 * REPLICATION_TLS on a MySQL 8.4 replica configured earlier without TLS (no MySQL server runs
 * here: the server is a small model of SHOW REPLICA STATUS and the SSL options' documented
 * effect; the MariaDB path runs on real servers in test/rig/replication-tls.test.ts). The channel
 * gets SOURCE_SSL* once, nothing else, written ahead; a restart applies nothing again.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPLICATION_TLS_RECORD } from '../../../agent/core/records.js';
import type { Db } from '../../../agent/mysql/db.js';
import type { ReplicationTls } from '../../../agent/mysql/replication-sql.js';
import { parseServerVersion } from '../../../agent/mysql/server-version.js';
import { ensureReplicationTls } from '../../../agent/sidecar/replication.js';

const MYSQL_84 = { version: parseServerVersion('8.4.3'), gtidMode: true };
const CA = '/etc/mysql-agent/tls/ca.crt';
const log = pino({ level: 'silent' });
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'replication-tls-test-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const recordState = () => readFile(join(dir, REPLICATION_TLS_RECORD), 'utf8').then((t) => (JSON.parse(t) as { state: string }).state, () => 'none');

function server() {
  const channel = { ssl: 'No', ca: '', verify: 'No', running: 'Yes', position: 'binlog.000002:1232' };
  const ran: { sql: string; record: string }[] = [];
  const db: Db = {
    async query(sql) {
      if (sql === 'SHOW REPLICA STATUS') {
        return [{ Source_Host: 'mysql-0.mysql', Replica_IO_Running: channel.running, Replica_SQL_Running: channel.running, Source_SSL_Allowed: channel.ssl, Source_SSL_CA_File: channel.ca, Source_SSL_Verify_Server_Cert: channel.verify }];
      }
      ran.push({ sql, record: await recordState() });
      if (sql === 'STOP REPLICA') channel.running = 'No';
      else if (sql === 'START REPLICA') channel.running = 'Yes';
      else {
        const m = /^CHANGE REPLICATION SOURCE TO SOURCE_SSL=(\d), SOURCE_SSL_CA='([^']*)', SOURCE_SSL_VERIFY_SERVER_CERT=(\d)$/.exec(sql);
        if (!m) throw new Error(`unexpected statement: ${sql}`);
        if (channel.running === 'Yes') throw new Error('ER_REPLICA_CHANNEL_MUST_STOP');
        Object.assign(channel, { ssl: m[1] === '1' ? 'Yes' : 'No', ca: m[2], verify: m[3] === '1' ? 'Yes' : 'No' });
      }
      return [];
    },
    end: async () => {},
  };
  return { db, ran, channel };
}

const source = (tls: ReplicationTls) => ({ host: 'mysql-0.mysql', port: 3306, user: 'repl', password: 'pw', connectRetrySeconds: 10, tls });

describe('ensureReplicationTls', () => {
  it('gives a channel set up without TLS the SSL options once, position kept, written ahead', async () => {
    const s = server();
    const deps = { db: s.db, server: MYSQL_84, dataDir: dir, source: source({ mode: 'verify-identity', caFile: CA }), log };
    expect(await ensureReplicationTls(deps)).toBe(true);
    expect(s.ran).toEqual([
      { sql: 'STOP REPLICA', record: 'applying' },
      { sql: `CHANGE REPLICATION SOURCE TO SOURCE_SSL=1, SOURCE_SSL_CA='${CA}', SOURCE_SSL_VERIFY_SERVER_CERT=1`, record: 'applying' },
      { sql: 'START REPLICA', record: 'applying' },
    ]);
    expect(await recordState()).toBe('applied');
    expect(s.channel).toMatchObject({ ssl: 'Yes', ca: CA, verify: 'Yes', running: 'Yes', position: 'binlog.000002:1232' });
    // The next start applies nothing.
    expect(await ensureReplicationTls(deps)).toBe(false);
    expect(s.ran).toHaveLength(3);
  });

  it('leaves a channel alone when TLS was never asked for, and records one that already has the mode', async () => {
    const s = server();
    expect(await ensureReplicationTls({ db: s.db, server: MYSQL_84, dataDir: dir, source: source({ mode: 'off', caFile: null }), log })).toBe(false);
    expect(await recordState()).toBe('none');
    Object.assign(s.channel, { ssl: 'Yes' });
    expect(await ensureReplicationTls({ db: s.db, server: MYSQL_84, dataDir: dir, source: source({ mode: 'required', caFile: CA }), log })).toBe(false);
    expect(s.ran).toEqual([]);
    expect(JSON.parse(await readFile(join(dir, REPLICATION_TLS_RECORD), 'utf8'))).toMatchObject({ state: 'applied', how: 'found-on-server', mode: 'required' });
  });
});
