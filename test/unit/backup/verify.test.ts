import { describe, expect, it } from 'vitest';
import { infoValues } from '../../../agent/backup/backup.js';
import { formatTable } from '../../../agent/backup/list.js';
import { checkTableVerdict, drillServerCommand } from '../../../agent/backup/verify.js';

describe('the drill', () => {
  it("reads CHECK TABLE's rows: OK only with an OK status and no error", () => {
    expect(checkTableVerdict([{ Table: 'shop.t', Op: 'check', Msg_type: 'status', Msg_text: 'OK' }])).toEqual({ ok: true, message: 'OK' });
    expect(
      checkTableVerdict([
        { Msg_type: 'Warning', Msg_text: 'InnoDB: The B-tree of index PRIMARY is corrupted.' },
        { Msg_type: 'error', Msg_text: 'Corrupt' },
      ]),
    ).toEqual({ ok: false, message: 'Corrupt; no status row' });
    expect(checkTableVerdict([{ Msg_type: 'status', Msg_text: 'Operation failed' }]).ok).toBe(false);
    expect(checkTableVerdict([]).ok).toBe(false);
  });
  it('starts its server on loopback and its own socket, without grants, binlog or replication', () => {
    // mariadbd --no-defaults --datadir=/s/data --socket=/s/drill.sock ... --bind-address=127.0.0.1 --port=4000 --skip-grant-tables ...
    expect(drillServerCommand('/usr/sbin/mariadbd', '/s', 4000, false).args).toEqual([
      '--no-defaults',
      '--datadir=/s/data',
      '--socket=/s/drill.sock',
      '--pid-file=/s/drill.pid',
      '--log-error=/s/drill.err',
      '--tmpdir=/s/tmp',
      '--bind-address=127.0.0.1',
      '--port=4000',
      '--skip-grant-tables',
      '--skip-slave-start',
      '--skip-log-bin',
      '--innodb-buffer-pool-size=64M',
    ]);
    expect(drillServerCommand('mariadbd', '/s', 4000, true).args.at(-1)).toBe('--user=root');
  });
});

describe('backup', () => {
  it("reads xtrabackup_info's key = value lines", () => {
    const v = infoValues('uuid = 1\nserver_version = 10.11.19-MariaDB-0+deb12u1-log\ntool_version = 10.11.19-MariaDB\n');
    expect([v.get('server_version'), v.get('tool_version')]).toEqual(['10.11.19-MariaDB-0+deb12u1-log', '10.11.19-MariaDB']);
  });
  it('lists nothing readably', () => {
    expect(formatTable([])).toBe('no complete backups\n');
  });
});
