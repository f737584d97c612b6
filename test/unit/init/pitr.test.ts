/**
 * The point-in-time restore's pure parts: RESTORE_TO / RESTORE_TO_GTID as init and restore-plan
 * read them (one-line errors naming the variable, all in one pass), and the backup a point chooses.
 */
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../agent/commands.js';
import { ConfigError } from '../../../agent/core/errors.js';
import { loadCommand } from '../../../agent/core/settings.js';
import { backupBefore } from '../../../agent/init/pitr.js';
import type { InitConfig, RestorePlanConfig } from '../../../agent/init/settings.js';
import type { Manifest } from '../../../agent/store/manifest.js';

const TOOLS = new Set(['/usr/bin/mariadb-backup', '/usr/bin/mbstream', '/usr/sbin/mariadbd', '/usr/bin/mariadb-binlog', '/usr/bin/mariadb']);
const STORE = { BACKUP_STORE_URL: 's3://bkt/c', VOLUME_CLAIMS: 'none' };

function load(argv: string[], env: Record<string, string>, executables = TOOLS) {
  return loadCommand(COMMANDS, { argv, env: { PATH: '/usr/bin:/usr/sbin', BACKUP_TOKEN: '0123456789abcdef0123', ...env }, hostname: 'mysql-0', isExecutable: (p) => executables.has(p) });
}
function problems(argv: string[], env: Record<string, string>, executables = TOOLS): string[] {
  try {
    load(argv, env, executables);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

describe('RESTORE_TO and RESTORE_TO_GTID', () => {
  it('take an RFC 3339 time with its zone, to the whole second, or a GTID state; init finds the replay tools', () => {
    const c = load(['init'], { ...STORE, RESTORE_FROM: 'latest', RESTORE_TO: '2026-12-01T11:41:59.900+01:00' }) as InitConfig;
    expect(c.restoreTo).toEqual({ time: Date.UTC(2026, 11, 1, 10, 41, 59) / 1000 });
    expect(c.tools).toMatchObject({ server: '/usr/sbin/mariadbd', binlog: '/usr/bin/mariadb-binlog', client: '/usr/bin/mariadb' });
    expect((load(['init'], { ...STORE, RESTORE_FROM: 'latest', RESTORE_TO_GTID: '0-100-12,1-101-3' }) as InitConfig).restoreTo).toEqual({ gtid: '0-100-12,1-101-3' });
  });

  it('refuse a time without a zone, a bad GTID, both at once, or a point without RESTORE_FROM=latest, naming the variable', () => {
    expect(problems(['init'], { ...STORE, RESTORE_FROM: 'latest', RESTORE_TO: '2026-12-01 10:41:59' })).toEqual([
      'RESTORE_TO="2026-12-01 10:41:59" is invalid: expected an RFC 3339 time with its zone, such as 2026-12-01T10:41:59Z',
    ]);
    expect(problems(['init'], { ...STORE, RESTORE_FROM: 'latest', RESTORE_TO_GTID: '0-100' })[0]).toMatch(/^RESTORE_TO_GTID="0-100" is invalid: expected a MariaDB GTID state/);
    expect(problems(['init'], { ...STORE, RESTORE_FROM: 'latest', RESTORE_TO: '2026-12-01T10:41:59Z', RESTORE_TO_GTID: '0-100-1' })).toEqual([
      'RESTORE_TO and RESTORE_TO_GTID are both set: give the point as one of them',
    ]);
    expect(problems(['init'], { ...STORE, RESTORE_FROM: '20261201T101530Z-3fa9c1', RESTORE_TO: '2026-12-01T10:41:59Z' })).toEqual([
      'RESTORE_TO needs RESTORE_FROM=latest: the newest complete backup before the point is chosen for it',
    ]);
    // Without the replay tools, every problem in one pass.
    expect(problems(['init'], { ...STORE, RESTORE_FROM: 'latest', RESTORE_TO: '2026-12-01T10:41:59Z' }, new Set(['/usr/bin/mariadb-backup', '/usr/bin/mbstream']))).toEqual([
      'no server tool found: install mysqld or mariadbd on PATH, or set MYSQLD_BIN',
      'no binlog tool found: install mariadb-binlog or mysqlbinlog on PATH, or set MYSQLBINLOG_BIN',
      'no client tool found: install mariadb or mysql on PATH, or set MYSQL_BIN',
    ]);
  });

  it('restore-plan needs the store and the point', () => {
    expect((load(['restore-plan'], { BACKUP_STORE_URL: 's3://bkt/c', RESTORE_TO_GTID: '0-100-5' }) as RestorePlanConfig).point).toEqual({ gtid: '0-100-5' });
    expect(problems(['restore-plan'], {})).toEqual([
      'BACKUP_STORE_URL is not set: set it to s3://bucket or s3://bucket/prefix',
      'restore-plan needs the point: set RESTORE_TO (an RFC 3339 time) or RESTORE_TO_GTID',
    ]);
  });
});

describe('backupBefore', () => {
  const m = (id: string, finished: string, gtid: string | null) => ({ id, finished_at: finished, coordinates: { gtid } }) as unknown as Manifest;
  const newestFirst = [m('c', '2026-12-01T12:00:00.400Z', '0-100-300'), m('b', '2026-12-01T11:00:00Z', null), m('a', '2026-12-01T10:00:00Z', '0-100-100')];
  it('takes the newest backup finished by the point (its end rounded up to the second) that carries a GTID', () => {
    expect(backupBefore(newestFirst, { time: Date.parse('2026-12-01T12:00:01Z') / 1000 })?.id).toBe('c');
    // 12:00:00.4 is not yet finished at 12:00:00.
    expect(backupBefore(newestFirst, { time: Date.parse('2026-12-01T12:00:00Z') / 1000 })?.id).toBe('a');
    expect(backupBefore(newestFirst, { time: Date.parse('2026-12-01T09:00:00Z') / 1000 })).toBeNull();
  });
  it('for a GTID, the newest backup the point covers', () => {
    expect(backupBefore(newestFirst, { gtid: '0-100-300' })?.id).toBe('c');
    expect(backupBefore(newestFirst, { gtid: '0-100-250' })?.id).toBe('a');
    expect(backupBefore(newestFirst, { gtid: '0-100-50' })).toBeNull();
  });
});
