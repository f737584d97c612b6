import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ParseError } from '../../../agent/core/errors.js';
import { parseBinlogInfo, parseGtidSet, parseSlaveInfo } from '../../../agent/mysql/info-files.js';

/** Fixtures are byte-exact info files; see test/fixtures/info/README.md for where each comes from. */
const fixture = (name: string) => readFileSync(new URL(`../../fixtures/info/${name}`, import.meta.url), 'utf8');

const UUID1 = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const UUID2 = 'c777888a-b6df-11e2-a604-080027635ef5';

/** Runs `fn`, expects a ParseError and returns it. */
function parseError(fn: () => unknown): ParseError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ParseError);
    return err as ParseError;
  }
  throw new Error('expected a ParseError, nothing was thrown');
}

describe('parseBinlogInfo', () => {
  it('reads the three MariaDB columns: file, position, GTID', () => {
    expect(parseBinlogInfo(fixture('binlog_info.mariadb-10.11-primary'))).toEqual({
      from: 'binlog_info',
      position: { file: 'mysql-bin.000001', pos: 1898491 },
      gtid: '0-100-10',
    });
  });

  it('reads the two-column xtrabackup form without a GTID', () => {
    expect(parseBinlogInfo(fixture('binlog_info.xtrabackup-two-columns'))).toEqual({
      from: 'binlog_info',
      position: { file: 'mysql-bin.000003', pos: 154 },
      gtid: null,
    });
  });

  it('joins a MySQL GTID set that continues on the next line after a comma', () => {
    expect(parseBinlogInfo(fixture('binlog_info.xtrabackup-2.4-gtid-multiline'))).toEqual({
      from: 'binlog_info',
      position: { file: 'mysql-bin.000002', pos: 1232 },
      gtid: `${UUID1}:1-5,${UUID2}:1-9`,
    });
  });

  it('takes the last record of the binlog-copying variant', () => {
    expect(parseBinlogInfo(fixture('binlog_info.binlog-copying-multirecord'))).toEqual({
      from: 'binlog_info',
      position: { file: 'mysql-bin.000003', pos: 642 },
      gtid: '0-100-13',
    });
  });

  it('accepts CRLF line endings', () => {
    expect(parseBinlogInfo(fixture('binlog_info.crlf'))).toEqual(parseBinlogInfo(fixture('binlog_info.mariadb-10.11-primary')));
  });

  it('accepts spaces instead of tabs (as in the Percona docs)', () => {
    expect(parseBinlogInfo(`mysql-bin.000002    1232        ${UUID2}:1-4\n`)).toEqual({
      from: 'binlog_info',
      position: { file: 'mysql-bin.000002', pos: 1232 },
      gtid: `${UUID2}:1-4`,
    });
  });

  it('refuses an empty file, naming it', () => {
    const err = parseError(() => parseBinlogInfo(fixture('binlog_info.empty')));
    expect(err.message).toMatch(/xtrabackup_binlog_info is empty/);
    expect(err.source).toBe('xtrabackup_binlog_info');
    expect(err.code).toBe('PARSE');
  });

  it('refuses a file of blank lines', () => {
    parseError(() => parseBinlogInfo('\n \r\n\t\n'));
  });

  it('names the source file given to it', () => {
    expect(parseError(() => parseBinlogInfo('', 'mariadb_backup_binlog_info')).source).toBe('mariadb_backup_binlog_info');
  });

  it.each([
    ['one field', 'mysql-bin.000001\n'],
    ['four fields', 'mysql-bin.000001\t4\t0-1-1\textra\n'],
    ['a quote in the file name', "mysql-bin'.000001\t154\n"],
    ['a space in the file name', 'mysql bin.000001\t154\n'],
    ['a semicolon in the file name', 'mysql-bin.000001;\t154\n'],
    ['a file name starting with a dot', '../mysql-bin.000001\t154\n'],
    ['a position that is not a number', 'mysql-bin.000001\t15x4\n'],
    ['a negative position', 'mysql-bin.000001\t-154\n'],
    ['a position below the binlog header (4)', 'mysql-bin.000001\t3\n'],
    ['a position beyond 2^53', 'mysql-bin.000001\t9999999999999999999\n'],
    ['a GTID with a quote', "mysql-bin.000001\t154\t0-1-1'\n"],
    ['a GTID with SQL', 'mysql-bin.000001\t154\t0-1-1;DROP\n'],
    ['a malformed MySQL GTID', `mysql-bin.000001\t154\t${UUID1}:x\n`],
  ])('refuses %s', (_what, text) => {
    parseError(() => parseBinlogInfo(text));
  });
});

describe('parseSlaveInfo', () => {
  const position = (file: string, pos: number) => ({ from: 'slave_info', position: { file, pos }, gtid: null });

  it('reads the MariaDB position form', () => {
    expect(parseSlaveInfo(fixture('slave_info.mariadb-10.11-position'))).toEqual(position('mysql-bin.000001', 1992994));
  });

  it('reads the MariaDB two-line GTID form', () => {
    expect(parseSlaveInfo(fixture('slave_info.mariadb-10.11-gtid'))).toEqual({ from: 'slave_info', position: null, gtid: '0-100-12' });
  });

  it('reads the MariaDB GTID form with CRLF line endings', () => {
    expect(parseSlaveInfo(fixture('slave_info.mariadb-10.11-gtid-crlf'))).toEqual(
      parseSlaveInfo(fixture('slave_info.mariadb-10.11-gtid')),
    );
  });

  it('reads the early 2.4 form without a semicolon', () => {
    expect(parseSlaveInfo(fixture('slave_info.xtrabackup-2.4-early-no-semicolon'))).toEqual(position('mysql-bin.000002', 1232));
  });

  it("accepts FOR CHANNEL '' (the default channel)", () => {
    expect(parseSlaveInfo(fixture('slave_info.xtrabackup-default-channel'))).toEqual(position('mysql-bin.000002', 1232));
  });

  it('reads the MySQL GTID form (gtid_purged + MASTER_AUTO_POSITION=1)', () => {
    expect(parseSlaveInfo(fixture('slave_info.xtrabackup-mysql-gtid'))).toEqual({ from: 'slave_info', position: null, gtid: `${UUID1}:1-10` });
  });

  it('reads the CHANGE REPLICATION SOURCE TO SOURCE_* spelling', () => {
    expect(parseSlaveInfo(fixture('slave_info.xtrabackup-8.0-replication-source'))).toEqual(position('mysql-bin.000004', 4711));
  });

  it('reads SOURCE_AUTO_POSITION=1', () => {
    const text = `SET GLOBAL gtid_purged='${UUID1}:1-10';\nCHANGE REPLICATION SOURCE TO SOURCE_AUTO_POSITION=1;\n`;
    expect(parseSlaveInfo(text)).toMatchObject({ position: null, gtid: `${UUID1}:1-10` });
  });

  it('keeps a quoted GTID set that spans lines as one value', () => {
    const text = `SET GLOBAL gtid_purged='${UUID1}:1-10,\n${UUID2}:1-3';\nCHANGE MASTER TO MASTER_AUTO_POSITION=1;\n`;
    expect(parseSlaveInfo(text)).toMatchObject({ position: null, gtid: `${UUID1}:1-10,${UUID2}:1-3` });
  });

  it.each([
    ['a MySQL GTID set in gtid_slave_pos', `SET GLOBAL gtid_slave_pos = '${UUID1}:1-10';\nCHANGE MASTER TO master_use_gtid = slave_pos;\n`],
    ['a MariaDB GTID in gtid_purged', "SET GLOBAL gtid_purged='0-100-12';\nCHANGE MASTER TO MASTER_AUTO_POSITION=1;\n"],
  ])('refuses %s', (_what, text) => {
    parseError(() => parseSlaveInfo(text));
  });

  it.each([
    ['two named channels', 'slave_info.xtrabackup-multi-source-two-channels'],
    ['one named channel', 'slave_info.xtrabackup-named-channel'],
    ['a MariaDB named connection', 'slave_info.mariadb-named-connection'],
  ])('refuses a multi-source clone (%s) and says so', (_what, file) => {
    expect(parseError(() => parseSlaveInfo(fixture(file))).message).toMatch(/multi-source/);
  });

  it('refuses a default and a named channel together as multi-source', () => {
    const text =
      "CHANGE MASTER TO MASTER_LOG_FILE='a.000001', MASTER_LOG_POS=4 FOR CHANNEL '';\n" +
      "CHANGE MASTER TO MASTER_LOG_FILE='b.000001', MASTER_LOG_POS=4 FOR CHANNEL 'b';\n";
    expect(parseError(() => parseSlaveInfo(text)).message).toMatch(/multi-source/);
  });

  it('refuses an empty file, naming it', () => {
    const err = parseError(() => parseSlaveInfo(''));
    expect(err.message).toMatch(/xtrabackup_slave_info is empty/);
    expect(err.source).toBe('xtrabackup_slave_info');
  });

  it.each([
    ['a quote inside the file name', "CHANGE MASTER TO MASTER_LOG_FILE='a'b', MASTER_LOG_POS=4;"],
    [
      'a second statement after a semicolon',
      "CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4; DROP TABLE x;",
    ],
    [
      'a second statement on the next line',
      "CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4;\nDROP TABLE x;",
    ],
    ['a -- comment', "CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4 -- x;"],
    ['a # comment', "CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4 # x"],
    ['a /* */ comment', "CHANGE MASTER TO /* x */ MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4;"],
    ['a comment inside the file name', "CHANGE MASTER TO MASTER_LOG_FILE='bin/*x*/.1', MASTER_LOG_POS=4;"],
    ['a GTID value with a quote', "SET GLOBAL gtid_slave_pos = '0-100-12'';\nCHANGE MASTER TO master_use_gtid = slave_pos;"],
    [
      'a GTID value that closes the quote',
      "SET GLOBAL gtid_slave_pos = '0-100-12', @@global.read_only = '0';\nCHANGE MASTER TO master_use_gtid = slave_pos;",
    ],
    ['a GTID value with a backslash', "SET GLOBAL gtid_slave_pos = '0-100-12\\';\nCHANGE MASTER TO master_use_gtid = slave_pos;"],
    ['a position that is not a number', "CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4x;"],
    ['a quoted position that is not a number', "CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS='4 OR 1';"],
    ['an extra option', "CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4, MASTER_HOST='evil';"],
    ['a missing position', "CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001';"],
    ['another statement kind', 'SELECT 1;'],
    ['a GTID CHANGE MASTER without its SET', 'CHANGE MASTER TO master_use_gtid = slave_pos;'],
    [
      'a GTID SET for the other flavour',
      `SET GLOBAL gtid_purged='${UUID1}:1-10';\nCHANGE MASTER TO master_use_gtid = slave_pos;`,
    ],
    ['a SET without a GTID CHANGE MASTER', "SET GLOBAL gtid_slave_pos = '0-1-2';\nCHANGE MASTER TO MASTER_LOG_FILE='a.1', MASTER_LOG_POS=4;"],
    ['master_use_gtid=no', "SET GLOBAL gtid_slave_pos = '0-1-2';\nCHANGE MASTER TO master_use_gtid = no;"],
    ['MASTER_AUTO_POSITION=0', `SET GLOBAL gtid_purged='${UUID1}:1-10';\nCHANGE MASTER TO MASTER_AUTO_POSITION=0;`],
  ])('refuses %s', (_what, text) => {
    parseError(() => parseSlaveInfo(text));
  });
});

describe('parseGtidSet', () => {
  it('accepts MariaDB domain-server-seq lists', () => {
    expect(parseGtidSet('0-100-12,1-200-7', 's')).toBe('0-100-12,1-200-7');
  });

  it('accepts MySQL uuid:interval sets, tagged sets and drops whitespace', () => {
    expect(parseGtidSet(`${UUID1}:1-5:7, \n${UUID2}:3`, 's')).toBe(`${UUID1}:1-5:7,${UUID2}:3`);
    expect(parseGtidSet(`${UUID1}:tag_1:1-5`, 's')).toBe(`${UUID1}:tag_1:1-5`);
  });

  it.each(['', '0-100', 'abc', `${UUID1}`, "0-1-2'", '0-1-2;', '0-1-2,'])('refuses %j', (text) => {
    parseError(() => parseGtidSet(text, 's'));
  });
});
