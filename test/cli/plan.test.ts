/**
 * `mysql-agent plan` as operators run it (the built CLI, a clone folder as DATA_DIR, a server
 * described on the command line): statements on stdout, password masked, exit 2 with the
 * reason when the clone cannot be used. The live-server form is covered on the rig.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPlan } from '../rig/helpers.js';

const CLONES = join(import.meta.dirname, '../fixtures/clones');
let empty: string;
beforeAll(async () => {
  empty = await mkdtemp(join(tmpdir(), 'mysql-agent-plan-'));
});
afterAll(async () => {
  await rm(empty, { recursive: true, force: true });
});

const env = (dataDir: string, extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH,
  POD_NAME: 'mysql-2',
  DATA_DIR: dataDir,
  REPLICATION_USER: 'repl',
  REPLICATION_PASSWORD: 'very-secret-pw',
  ...extra,
});

describe('mysql-agent plan', () => {
  it('prints the MySQL 8.4 statements for a GTID clone, one per line, password masked', async () => {
    const r = await runPlan(['--server-version', '8.4.3'], env(join(CLONES, 'xtrabackup-8.0-from-primary-gtid')));
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      'STOP REPLICA;',
      'RESET REPLICA ALL;',
      'RESET BINARY LOGS AND GTIDS;',
      "SET GLOBAL gtid_purged = '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-4';",
      "CHANGE REPLICATION SOURCE TO SOURCE_HOST='mysql-0.mysql', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='***', SOURCE_CONNECT_RETRY=10, GET_SOURCE_PUBLIC_KEY=1, SOURCE_AUTO_POSITION=1;",
      'START REPLICA;',
    ]);
    expect(r.stdout + r.stderr).not.toContain('very-secret-pw');
    expect(r.stderr).toContain('mode gtid');
  });

  it('follows REPLICATION_MODE and --gtid-mode', async () => {
    const dir = join(CLONES, 'xtrabackup-8.0-from-primary-gtid');
    const off = await runPlan(['--server-version', '8.0.30', '--gtid-mode', 'OFF'], env(dir));
    expect(off.code).toBe(0);
    expect(off.stdout).toContain("SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=1232;");
    const position = await runPlan(['--server-version', '10.11.9-MariaDB', '--replication-mode', 'position'], env(join(CLONES, 'mariadb-10.11-from-primary')));
    expect(position.stdout).toContain("MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=1898491;");
    expect(position.stdout).not.toContain('gtid_slave_pos');
  });

  it('exits 2 naming why when the requested mode is impossible', async () => {
    const r = await runPlan(['--server-version', '8.4.3', '--gtid-mode', 'OFF', '--replication-mode', 'gtid'], env(join(CLONES, 'xtrabackup-8.0-from-primary-gtid')));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/REPLICATION_MODE=gtid is impossible: gtid_mode is not ON/);
  });

  it('exits 2 for a multi-source clone and for a datadir without info files', async () => {
    const multi = await runPlan(['--server-version', '8.0.30'], env(join(CLONES, 'xtrabackup-multi-source-two-channels')));
    expect(multi.code).toBe(2);
    expect(multi.stderr).toContain('multi-source');
    const none = await runPlan(['--server-version', '8.0.30'], env(empty));
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no xtrabackup_slave_info or xtrabackup_binlog_info');
  });

  it('matches the golden file of the fixture', async () => {
    const r = await runPlan(['--server-version', '11.4.3-MariaDB'], env(join(CLONES, 'mariadb-11.4-from-gtid-replica')));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'STOP SLAVE;\n' +
        'RESET SLAVE ALL;\n' +
        "SET GLOBAL gtid_slave_pos = '0-100-12';\n" +
        "CHANGE MASTER TO MASTER_HOST='mysql-0.mysql', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='***', MASTER_CONNECT_RETRY=10, MASTER_USE_GTID=slave_pos;\n" +
        'START SLAVE;\n',
    );
  });

  it('exits 2 with one line for a bad setting', async () => {
    const r = await runPlan(['--server-version', 'eight'], env(empty));
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('SERVER_VERSION');
  });

  it('runs the README example as written: --data-dir ./clone from the working directory', async () => {
    const { cp } = await import('node:fs/promises');
    await cp(join(CLONES, 'xtrabackup-8.0-from-primary-gtid'), join(empty, 'clone'), { recursive: true });
    const r = await runPlan(['--pod-name', 'mysql-2', '--data-dir', './clone', '--server-version', '8.4.3'], { PATH: process.env.PATH }, empty);
    expect(r.stderr).not.toContain('absolute');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("SET GLOBAL gtid_purged = '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-4';");
  });

  it('lists only its own settings in --help', async () => {
    const r = await runPlan(['--help'], { PATH: process.env.PATH });
    expect(r.code).toBe(0);
    for (const flag of ['--data-dir', '--server-version', '--replication-user', '--pod-name']) expect(r.stdout).toContain(flag);
    for (const flag of ['--backup-bind', '--clone-retry-deadline', '--config-map-dir', '--backup-token', '--ready-max-lag']) expect(r.stdout).not.toContain(flag);
  });

  it('reports every bad setting in one pass, one line each', async () => {
    const r = await runPlan(['--server-version', 'eight', '--mysql-port', '0', '--log-level', 'loud'], env(empty));
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const [i, name] of ['MYSQL_PORT', 'SERVER_VERSION', 'LOG_LEVEL'].entries()) expect(lines.some((l) => l.startsWith('mysql-agent: ') && l.includes(name)), `${i}`).toBe(true);
  });

  it('puts an IPv6 PRIMARY_HOST into CHANGE MASTER as a quoted literal', async () => {
    const r = await runPlan(['--server-version', '10.11.9-MariaDB'], env(join(CLONES, 'mariadb-10.11-from-primary'), { PRIMARY_HOST: 'fd00:10::20' }));
    expect(r.stderr).toContain('mode gtid');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("CHANGE MASTER TO MASTER_HOST='fd00:10::20', MASTER_PORT=3306,");
  });
});
