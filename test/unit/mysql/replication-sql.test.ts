import { describe, expect, it } from 'vitest';
import { parseBinlogInfo, parseSlaveInfo } from '../../../agent/mysql/info-files.js';
import type { CloneCoordinates } from '../../../agent/mysql/info-files.js';
import { PlanError } from '../../../agent/core/errors.js';
import {
  NO_REPLICATION_TLS,
  type ReplicationSource,
  chooseMode,
  credentialStatements,
  planReplication,
  planStatements,
  replicaStatusQuery,
  replicationStatements,
} from '../../../agent/mysql/replication-sql.js';
import { type ServerVersion, parseServerVersion } from '../../../agent/mysql/server-version.js';

const MARIADB_10_11 = parseServerVersion('10.11.19-MariaDB-0+deb12u1', 'Debian 12');
const MYSQL = (v: string) => parseServerVersion(v, 'MySQL Community Server - GPL');

const SOURCE: ReplicationSource = { host: 'mysql-0.mysql', port: 3306, user: 'repl', password: 'pw', connectRetrySeconds: 10, tls: NO_REPLICATION_TLS };

const UUID = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const FROM_PRIMARY = parseBinlogInfo('mysql-bin.000001\t1898491\t0-100-10\n');
const FROM_POSITION_REPLICA = parseSlaveInfo("CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=1992994;\n");
const FROM_MARIADB_GTID_REPLICA = parseSlaveInfo("SET GLOBAL gtid_slave_pos = '0-100-12';\nCHANGE MASTER TO master_use_gtid = slave_pos;\n");
const FROM_MYSQL_GTID_REPLICA = parseSlaveInfo(`SET GLOBAL gtid_purged='${UUID}:1-10';\nCHANGE MASTER TO MASTER_AUTO_POSITION=1;\n`);
const FROM_MYSQL_PRIMARY = parseBinlogInfo(`binlog.000002\t1232\t${UUID}:1-4\n`);

/** The statements in the mode the clone allows by itself: GTID when it has no position. */
const build = (version: ServerVersion, clone: CloneCoordinates, source: ReplicationSource) =>
  replicationStatements({ version, gtidMode: true }, clone, clone.position === null ? 'gtid' : 'position', source);
const sqlOf = (...args: Parameters<typeof build>) => build(...args).map((s) => s.sql);

const MASTER_CONNECTION = "MASTER_HOST='mysql-0.mysql', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='pw', MASTER_CONNECT_RETRY=10";
const SOURCE_CONNECTION = "SOURCE_HOST='mysql-0.mysql', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='pw', SOURCE_CONNECT_RETRY=10";

describe('replicationStatements: MariaDB 10.11', () => {
  it('points a clone of the primary at its binlog position', () => {
    expect(sqlOf(MARIADB_10_11, FROM_PRIMARY, SOURCE)).toEqual([
      `CHANGE MASTER TO ${MASTER_CONNECTION}, MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=1898491`,
      'START SLAVE',
    ]);
  });

  it("points a clone of a position replica at that replica's source position", () => {
    expect(sqlOf(MARIADB_10_11, FROM_POSITION_REPLICA, SOURCE)).toEqual([
      `CHANGE MASTER TO ${MASTER_CONNECTION}, MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=1992994`,
      'START SLAVE',
    ]);
  });

  it('sets gtid_slave_pos first, then CHANGE MASTER with MASTER_USE_GTID=slave_pos, then START SLAVE', () => {
    expect(sqlOf(MARIADB_10_11, FROM_MARIADB_GTID_REPLICA, SOURCE)).toEqual([
      "SET GLOBAL gtid_slave_pos = '0-100-12'",
      `CHANGE MASTER TO ${MASTER_CONNECTION}, MASTER_USE_GTID=slave_pos`,
      'START SLAVE',
    ]);
  });

  it('never uses MySQL-only syntax', () => {
    for (const coords of [FROM_PRIMARY, FROM_POSITION_REPLICA, FROM_MARIADB_GTID_REPLICA]) {
      const all = sqlOf(MARIADB_10_11, coords, SOURCE).join('\n');
      expect(all).not.toMatch(/SOURCE_|REPLICA|PUBLIC_KEY|AUTO_POSITION|gtid_purged/);
    }
  });
});

describe('replicationStatements: MySQL by version', () => {
  it('5.7.44: CHANGE MASTER without a public-key option, START SLAVE', () => {
    expect(sqlOf(MYSQL('5.7.44-log'), FROM_POSITION_REPLICA, SOURCE)).toEqual([
      `CHANGE MASTER TO ${MASTER_CONNECTION}, MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=1992994`,
      'START SLAVE',
    ]);
  });

  it('8.0.21: CHANGE MASTER with GET_MASTER_PUBLIC_KEY=1, still START SLAVE', () => {
    expect(sqlOf(MYSQL('8.0.21'), FROM_POSITION_REPLICA, SOURCE)).toEqual([
      `CHANGE MASTER TO ${MASTER_CONNECTION}, GET_MASTER_PUBLIC_KEY=1, MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=1992994`,
      'START SLAVE',
    ]);
  });

  it('8.0.22: START REPLICA exists, CHANGE REPLICATION SOURCE does not yet', () => {
    expect(sqlOf(MYSQL('8.0.22'), FROM_POSITION_REPLICA, SOURCE)).toEqual([
      `CHANGE MASTER TO ${MASTER_CONNECTION}, GET_MASTER_PUBLIC_KEY=1, MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=1992994`,
      'START REPLICA',
    ]);
  });

  it.each(['8.0.23', '8.0.30', '8.4.3', '9.1.0'])('%s: CHANGE REPLICATION SOURCE TO with SOURCE_* and GET_SOURCE_PUBLIC_KEY=1, START REPLICA', (v) => {
    expect(sqlOf(MYSQL(v), FROM_POSITION_REPLICA, SOURCE)).toEqual([
      `CHANGE REPLICATION SOURCE TO ${SOURCE_CONNECTION}, GET_SOURCE_PUBLIC_KEY=1, SOURCE_LOG_FILE='mysql-bin.000001', SOURCE_LOG_POS=1992994`,
      'START REPLICA',
    ]);
  });

  it('8.4: a clone of the primary uses its binlog position', () => {
    expect(sqlOf(MYSQL('8.4.3'), FROM_MYSQL_PRIMARY, SOURCE)).toEqual([
      `CHANGE REPLICATION SOURCE TO ${SOURCE_CONNECTION}, GET_SOURCE_PUBLIC_KEY=1, SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=1232`,
      'START REPLICA',
    ]);
  });

  it('8.4: GTID clone sets gtid_purged, then auto-positions', () => {
    expect(sqlOf(MYSQL('8.4.3'), FROM_MYSQL_GTID_REPLICA, SOURCE).slice(-3)).toEqual([
      `SET GLOBAL gtid_purged = '${UUID}:1-10'`,
      `CHANGE REPLICATION SOURCE TO ${SOURCE_CONNECTION}, GET_SOURCE_PUBLIC_KEY=1, SOURCE_AUTO_POSITION=1`,
      'START REPLICA',
    ]);
  });

  it('5.7: GTID clone sets gtid_purged, then MASTER_AUTO_POSITION=1', () => {
    expect(sqlOf(MYSQL('5.7.44'), FROM_MYSQL_GTID_REPLICA, SOURCE).slice(-3)).toEqual([
      `SET GLOBAL gtid_purged = '${UUID}:1-10'`,
      `CHANGE MASTER TO ${MASTER_CONNECTION}, MASTER_AUTO_POSITION=1`,
      'START SLAVE',
    ]);
  });

  // gtid_purged can only be set while gtid_executed is empty (Percona's GTID replica recipe runs
  // RESET MASTER first); the statement is RESET BINARY LOGS AND GTIDS from 8.2, RESET MASTER before.
  it.each([
    ['5.7.44', 'RESET MASTER'],
    ['8.0.30', 'RESET MASTER'],
    ['8.4.3', 'RESET BINARY LOGS AND GTIDS'],
  ])('%s: empties gtid_executed (%s) before SET GLOBAL gtid_purged', (v, reset) => {
    const sql = sqlOf(MYSQL(v), FROM_MYSQL_GTID_REPLICA, SOURCE);
    const setAt = sql.findIndex((s) => s.startsWith('SET GLOBAL gtid_purged'));
    expect(setAt).toBeGreaterThan(0);
    expect(sql[setAt - 1]).toBe(reset);
  });

  it('8.4: never uses syntax 8.4 removed', () => {
    for (const coords of [FROM_PRIMARY, FROM_POSITION_REPLICA, FROM_MYSQL_GTID_REPLICA]) {
      const all = sqlOf(MYSQL('8.4.3'), coords, SOURCE).join('\n');
      expect(all).not.toMatch(/CHANGE MASTER|START SLAVE|MASTER_|RESET MASTER/);
    }
  });

  it('5.7 and 8.0.21: never use syntax they lack', () => {
    for (const v of ['5.7.44', '8.0.21']) {
      for (const coords of [FROM_PRIMARY, FROM_POSITION_REPLICA, FROM_MYSQL_GTID_REPLICA]) {
        const all = sqlOf(MYSQL(v), coords, SOURCE).join('\n');
        expect(all).not.toMatch(/SOURCE_|REPLICATION SOURCE|START REPLICA|RESET BINARY LOGS/);
      }
    }
  });
});

describe('replicationStatements: the password', () => {
  it('is in sql and masked as *** in shown', () => {
    const [change] = build(MARIADB_10_11, FROM_PRIMARY, SOURCE);
    expect(change!.sql).toContain("MASTER_PASSWORD='pw'");
    expect(change!.shown).toBe(
      "CHANGE MASTER TO MASTER_HOST='mysql-0.mysql', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='***', MASTER_CONNECT_RETRY=10, MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=1898491",
    );
  });

  it('masks it in shown on MySQL 8.4 too', () => {
    const statements = build(MYSQL('8.4.3'), FROM_POSITION_REPLICA, { ...SOURCE, password: 'hunter2-secret' });
    for (const s of statements) expect(s.shown).not.toContain('hunter2-secret');
    expect(statements[0]!.shown).toContain("SOURCE_PASSWORD='***'");
    expect(statements[0]!.sql).toContain("SOURCE_PASSWORD='hunter2-secret'");
  });

  it('escapes a quote and a backslash so they cannot end the string', () => {
    const password = "it's\\', MASTER_HOST='evil";
    const [change] = build(MARIADB_10_11, FROM_PRIMARY, { ...SOURCE, password });
    expect(change!.sql).toBe(
      "CHANGE MASTER TO MASTER_HOST='mysql-0.mysql', MASTER_PORT=3306, MASTER_USER='repl', " +
        "MASTER_PASSWORD='it\\'s\\\\\\', MASTER_HOST=\\'evil', MASTER_CONNECT_RETRY=10, " +
        "MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=1898491",
    );
    expect(change!.shown).not.toContain('evil');
  });

  it('keeps a ? in the password from being taken for a placeholder', () => {
    const [change] = build(MARIADB_10_11, FROM_PRIMARY, { ...SOURCE, password: 'a?b' });
    expect(change!.sql).toContain("MASTER_PASSWORD='a?b', MASTER_CONNECT_RETRY=10, MASTER_LOG_FILE='mysql-bin.000001'");
  });

  it('shows statements without a password as they run', () => {
    const statements = build(MARIADB_10_11, FROM_MARIADB_GTID_REPLICA, SOURCE);
    expect(statements[0]!.shown).toBe(statements[0]!.sql);
    expect(statements.at(-1)!.shown).toBe('START SLAVE');
  });
});

describe('credentialStatements: another account, same position', () => {
  it.each([
    ['10.11.19-MariaDB-0+deb12u1', ['STOP SLAVE', "CHANGE MASTER TO MASTER_USER='repl', MASTER_PASSWORD='pw'", 'START SLAVE']],
    ['5.7.44', ['STOP SLAVE', "CHANGE MASTER TO MASTER_USER='repl', MASTER_PASSWORD='pw'", 'START SLAVE']],
    ['8.0.21', ['STOP SLAVE', "CHANGE MASTER TO MASTER_USER='repl', MASTER_PASSWORD='pw'", 'START SLAVE']],
    ['8.0.22', ['STOP REPLICA', "CHANGE MASTER TO MASTER_USER='repl', MASTER_PASSWORD='pw'", 'START REPLICA']],
    ['8.4.3', ['STOP REPLICA', "CHANGE REPLICATION SOURCE TO SOURCE_USER='repl', SOURCE_PASSWORD='pw'", 'START REPLICA']],
  ])('%s', (version, expected) => {
    const statements = credentialStatements(parseServerVersion(version), SOURCE);
    expect(statements.map((s) => s.sql)).toEqual(expected);
    // Nothing that would move the replica: no host, file, position or GTID.
    expect(statements.map((s) => s.sql).join(' ')).not.toMatch(/HOST|LOG_FILE|LOG_POS|GTID|AUTO_POSITION/);
  });

  it('masks the password in shown and escapes it in sql', () => {
    const [, change] = credentialStatements(MARIADB_10_11, { ...SOURCE, password: "new'secret" });
    expect(change!.shown).toBe("CHANGE MASTER TO MASTER_USER='repl', MASTER_PASSWORD='***'");
    expect(change!.sql).toBe("CHANGE MASTER TO MASTER_USER='repl', MASTER_PASSWORD='new\\'secret'");
  });
});

describe('replicaStatusQuery', () => {
  it.each([
    ['10.11.19-MariaDB-0+deb12u1', 'SHOW SLAVE STATUS'],
    ['5.7.44', 'SHOW SLAVE STATUS'],
    ['8.0.21', 'SHOW SLAVE STATUS'],
    ['8.0.22', 'SHOW REPLICA STATUS'],
    ['8.4.3', 'SHOW REPLICA STATUS'],
  ])('%s: %s', (version, query) => {
    expect(replicaStatusQuery(parseServerVersion(version))).toBe(query);
  });
});

describe('chooseMode', () => {
  const MARIADB = { version: MARIADB_10_11, gtidMode: true };
  const MYSQL_GTID = { version: MYSQL('8.4.3'), gtidMode: true };
  const MYSQL_NO_GTID = { version: MYSQL('8.4.3'), gtidMode: false };
  const FROM_MARIADB_POSITION_ONLY = parseBinlogInfo('mysql-bin.000003\t154\n');

  it.each([
    ['MariaDB, clone with GTID and position', MARIADB, FROM_PRIMARY, 'gtid'],
    ['MariaDB, clone with position only', MARIADB, FROM_MARIADB_POSITION_ONLY, 'position'],
    ['MariaDB, clone from a GTID replica', MARIADB, FROM_MARIADB_GTID_REPLICA, 'gtid'],
    ['MySQL gtid_mode ON, GTID clone', MYSQL_GTID, FROM_MYSQL_PRIMARY, 'gtid'],
    ['MySQL gtid_mode ON, position-only clone', MYSQL_GTID, FROM_POSITION_REPLICA, 'position'],
    ['MySQL gtid_mode OFF, GTID clone with a position', MYSQL_NO_GTID, FROM_MYSQL_PRIMARY, 'position'],
  ] as const)('auto: %s → %s', (_what, server, clone, mode) => {
    expect(chooseMode(server, clone, 'auto').mode).toBe(mode);
  });

  it.each([
    ['gtid on MySQL with gtid_mode OFF', MYSQL_NO_GTID, FROM_MYSQL_PRIMARY, 'gtid', /REPLICATION_MODE=gtid is impossible: gtid_mode is not ON/],
    ['gtid with a clone without GTID', MARIADB, FROM_POSITION_REPLICA, 'gtid', /REPLICATION_MODE=gtid is impossible: .*carries no GTID/],
    ['gtid with a MySQL GTID on MariaDB', MARIADB, FROM_MYSQL_PRIMARY, 'gtid', /is not a MariaDB GTID/],
    ['position with a GTID-only clone', MARIADB, FROM_MARIADB_GTID_REPLICA, 'position', /REPLICATION_MODE=position is impossible: .*only a GTID position/],
    ['auto with a GTID-only clone on gtid_mode OFF', MYSQL_NO_GTID, FROM_MYSQL_GTID_REPLICA, 'auto', /cannot be followed/],
  ] as const)('refuses %s, naming why', (_what, server, clone, requested, message) => {
    let thrown: unknown;
    try {
      chooseMode(server, clone, requested);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(PlanError);
    expect((thrown as Error).message).toMatch(message);
  });

  it('honours an explicit position request on a GTID-capable clone', () => {
    expect(planStatements(planReplication(MARIADB, FROM_PRIMARY, 'position', SOURCE)).map((s) => s.sql)).toEqual([
      'STOP SLAVE',
      'RESET SLAVE ALL',
      `CHANGE MASTER TO ${MASTER_CONNECTION}, MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=1898491`,
      'START SLAVE',
    ]);
  });
});
