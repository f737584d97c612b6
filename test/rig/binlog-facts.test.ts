/**
 * What point-in-time recovery relies on, checked on a real MariaDB 10.11 (its own temporary
 * datadir, socket only, --skip-networking, killed at the end): what mariadb-binlog prints and
 * selects at the boundaries of --stop-datetime and GTID positions, which time an event carries,
 * how time zones enter, and reading files from the datadir versus --read-from-remote-server --raw.
 * The reader of agent/mysql/binlog.ts is checked against mariadb-binlog on the same fresh files.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarizeBinlog } from '../../agent/mysql/binlog.js';
import { newBaseDir } from './helpers.js';

const execFileP = promisify(execFile);
let dir: string;
let server: ChildProcess;
let socket: string;
let data: string;
/** Unix seconds at which each marked row's statement began and its COMMIT returned. */
const marks: Record<string, { before: number; after: number }> = {};

const sql = async (statement: string, user = 'root', password = '') =>
  (await execFileP('mariadb', ['-S', socket, `-u${user}`, ...(password ? [`-p${password}`] : []), '-N', '-B', '-e', statement])).stdout;
const binlog = async (args: string[], env: NodeJS.ProcessEnv = {}) =>
  (await execFileP('mariadb-binlog', args, { cwd: data, env: { PATH: process.env.PATH, TZ: 'UTC', ...env }, maxBuffer: 64 << 20 })).stdout;
/** GTIDs and row values of a mariadb-binlog text, in order. */
const gtidsIn = (text: string) => [...text.matchAll(/\tGTID (\d+-\d+-\d+)/g)].map((m) => m[1]);
const now = () => Date.now() / 1000;

/** Waits until the start of a fresh second, so a statement's second is known. */
async function atSecondStart() {
  await delay(1000 - (Date.now() % 1000) + 20);
}

beforeAll(async () => {
  dir = await newBaseDir('binlog-facts');
  data = join(dir, 'data');
  socket = join(dir, 'sock');
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const cnf = join(dir, 'my.cnf');
  await writeFile(cnf, ['[mysqld]', ...(process.getuid?.() === 0 ? ['user=root'] : []), `datadir=${data}`, `socket=${socket}`, `pid-file=${join(dir, 'pid')}`, `log-error=${join(dir, 'err')}`, `tmpdir=${join(dir, 'tmp')}`, 'skip-networking', 'server-id=100', 'log-bin=mysql-bin', 'innodb_buffer_pool_size=64M', ''].join('\n'));
  await execFileP('mariadb-install-db', [`--defaults-file=${cnf}`, '--auth-root-authentication-method=normal', '--skip-test-db']);
  server = spawn('mariadbd', [`--defaults-file=${cnf}`], { stdio: 'ignore', detached: true });
  for (let i = 0; ; i++) {
    try {
      await sql('SELECT 1');
      break;
    } catch (e) {
      if (i > 150) throw e;
      await delay(200);
    }
  }
  await sql('RESET MASTER');
  await sql('CREATE DATABASE t; CREATE TABLE t.a (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB');
  for (const i of [1, 2, 3]) {
    await atSecondStart();
    const before = now();
    await sql(`INSERT INTO t.a VALUES (${i}, 'r${i}')`);
    marks[`r${i}`] = { before, after: now() };
  }
  // A long transaction: its first statement a second before its COMMIT, which comes 3 s later.
  await atSecondStart();
  const before = now();
  await sql("BEGIN; INSERT INTO t.a VALUES (10, 'long-start'); DO SLEEP(3); INSERT INTO t.a VALUES (11, 'long-end'); COMMIT");
  marks.long = { before, after: now() };
  // An autocommit statement that runs 2 s (SLEEP inside the statement).
  await atSecondStart();
  const slowBefore = now();
  await sql("INSERT INTO t.a SELECT 12, IF(SLEEP(2) = 0, 'slow', 'x')");
  marks.slow = { before: slowBefore, after: now() };
  await sql('FLUSH BINARY LOGS');
  for (const i of [4, 5]) await sql(`INSERT INTO t.a VALUES (${i}, 'r${i}')`);
}, 120_000);

afterAll(async () => {
  if (server?.pid) process.kill(-server.pid, 'SIGKILL');
  await delay(300);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Header lines of mariadb-binlog's text: GTID and Query events with their printed time. */
const sqlTime = (t: number) => new Date(Math.floor(t) * 1000).toISOString().slice(0, 19).replace('T', ' ');
const FILES = ['mysql-bin.000001', 'mysql-bin.000002'];

/** `YYMMDD HH:MM:SS What` of each event of the group that GTID starts (up to the next GTID or Rotate). */
function group(text: string, gtid: string): string[] {
  const all = [...text.matchAll(/^#(\d{6} [ \d]\d:\d\d:\d\d) server id \d+ +end_log_pos \d+ CRC32 0x[0-9a-f]+\s+(GTID \S+|\S+)/gm)].map((m) => `${m[1]} ${m[2]}`);
  const from = all.findIndex((h) => h.endsWith(`GTID ${gtid}`));
  const to = all.findIndex((h, k) => k > from && /GTID|Rotate/.test(h));
  return all.slice(from, to);
}
/** The header form of a Unix second (UTC): `yymmdd hh:mm:ss`, the hour padded with a space, not a zero (` 0:30:05`). */
const printedSecond = (t: number) => sqlTime(t).slice(2).replace(/-/g, '').replace(/ 0(\d):/, '  $1:');

describe('what an event carries', () => {
  it('a transaction is stamped with its COMMIT (GTID event and Xid), its statements with their own start', async () => {
    const text = await binlog(['mysql-bin.000001']);
    expect(marks.long!.after - marks.long!.before).toBeGreaterThan(3);
    const start = printedSecond(marks.long!.before);
    const commit = printedSecond(marks.long!.after);
    expect(group(text, '0-100-6')).toEqual([`${commit} GTID 0-100-6`, `${start} Query`, `${commit} Query`, `${commit} Xid`]);
  });

  it('an autocommit statement is stamped with its start, not its commit (2 s later here)', async () => {
    const text = await binlog(['mysql-bin.000001']);
    expect(marks.slow!.after - marks.slow!.before).toBeGreaterThan(2);
    const events = group(text, '0-100-7');
    expect(events.length).toBeGreaterThan(1);
    for (const e of events) expect(e.slice(0, 15)).toBe(printedSecond(marks.slow!.before));
  });
});

describe('mariadb-binlog selecting by time', () => {
  it('--stop-datetime excludes the events of that very second: the second after is needed to include them', async () => {
    const at = sqlTime(marks.r2!.before);
    expect(gtidsIn(await binlog([`--stop-datetime=${at}`, ...FILES]))).toEqual(['0-100-1', '0-100-2', '0-100-3']);
    expect(gtidsIn(await binlog([`--stop-datetime=${sqlTime(marks.r2!.before + 1)}`, ...FILES]))).toEqual(['0-100-1', '0-100-2', '0-100-3', '0-100-4']);
  });

  it('--stop-datetime never cuts the long transaction: its GTID event already carries the COMMIT time', async () => {
    const text = await binlog([`--stop-datetime=${sqlTime(marks.long!.before + 1)}`, ...FILES]);
    expect(gtidsIn(text).at(-1)).toBe('0-100-5');
    expect(text).not.toContain('long-start');
  });

  it('reads --stop-datetime and prints header times in its own TZ', async () => {
    const at = sqlTime(marks.r2!.before + 1);
    // The same string in Tokyo (UTC+9) is nine hours earlier: nothing is selected.
    expect(gtidsIn(await binlog([`--stop-datetime=${at}`, ...FILES], { TZ: 'Asia/Tokyo' }))).toEqual([]);
    const utc = group(await binlog(['mysql-bin.000001']), '0-100-1')[0]!;
    const tokyo = group(await binlog(['mysql-bin.000001'], { TZ: 'Asia/Tokyo' }), '0-100-1')[0]!;
    const hour = (h: string) => Number(h.slice(7, 9));
    expect((hour(tokyo) - hour(utc) + 24) % 24).toBe(9);
    // The server's own statements do not depend on it: SET TIMESTAMP is Unix seconds.
    expect(await binlog(['mysql-bin.000001'], { TZ: 'Asia/Tokyo' })).toContain(`SET TIMESTAMP=${Math.floor(marks.r2!.before)}`);
  });
});

describe('mariadb-binlog selecting by GTID', () => {
  it('--start-position=<gtid> starts after it, --stop-position=<gtid> includes it, across files', async () => {
    expect(gtidsIn(await binlog(['--start-position=0-100-3', '--stop-position=0-100-8', ...FILES]))).toEqual(['0-100-4', '0-100-5', '0-100-6', '0-100-7', '0-100-8']);
  });

  it('a stop position never reached is only a warning: exit 0, everything printed', async () => {
    const run = await execFileP('mariadb-binlog', ['--stop-position=0-100-99', ...FILES], { cwd: data, env: { PATH: process.env.PATH, TZ: 'UTC' } });
    expect(run.stderr).toContain('WARNING: Did not reach stop position 0-100-99 before end of input');
    expect(gtidsIn(run.stdout).at(-1)).toBe('0-100-9');
  });

  it('--gtid-strict-mode refuses a stop before the start (exit 1); files that do not begin at the start position are refused with or without it', async () => {
    await expect(binlog(['--gtid-strict-mode', '--start-position=0-100-8', '--stop-position=0-100-7', ...FILES])).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('Queried GTID range is invalid in strict mode') });
    // Without the first file GTIDs 3-7 are absent: the file's Gtid list is compared with the start.
    const missing = 'Binary logs are missing data for domain 0. Expected data to start from state 0-100-2; however, the initial GTID state of the logs was 0-100-7.';
    for (const strict of [['--gtid-strict-mode'], []]) {
      await expect(binlog([...strict, '--start-position=0-100-2', '--stop-position=0-100-9', 'mysql-bin.000002'])).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining(missing) });
    }
  });
});

describe('datadir file versus --read-from-remote-server --raw', () => {
  it('the remote copy needs REPLICATION SLAVE; a closed file comes byte for byte, the open one differs only in its in-use flag', async () => {
    await sql("CREATE USER puller@localhost IDENTIFIED BY 'pw'");
    const out = join(dir, 'remote');
    await mkdir(out);
    const pull = (file: string) => execFileP('mariadb-binlog', ['-S', socket, '-upuller', '-ppw', '--read-from-remote-server', '--raw', `--result-file=${out}/`, file]);
    await expect(pull('mysql-bin.000001')).rejects.toMatchObject({ stderr: expect.stringContaining('REPLICATION SLAVE privilege') });
    await sql('GRANT REPLICATION SLAVE ON *.* TO puller@localhost');
    await pull('mysql-bin.000001');
    await pull('mysql-bin.000002');
    expect(readFileSync(join(out, 'mysql-bin.000001')).equals(readFileSync(join(data, 'mysql-bin.000001')))).toBe(true);
    const local = readFileSync(join(data, 'mysql-bin.000002'));
    const remote = readFileSync(join(out, 'mysql-bin.000002'));
    expect(remote.length).toBe(local.length);
    const differ = [...local.keys()].filter((i) => local[i] !== remote[i]);
    // Offset 21: the format description's flags (4-byte magic + header byte 17): LOG_EVENT_BINLOG_IN_USE_F.
    expect(differ).toEqual([21]);
    expect(local[21]! & 1).toBe(1);
  });
});

describe('the agent reader on the same files', () => {
  it('summaries chain the files by GTID state, SHA-256 of the bytes, closed and open told apart', async () => {
    const a = await summarizeBinlog('mysql-bin.000001', createReadStream(join(data, 'mysql-bin.000001')));
    const b = await summarizeBinlog('mysql-bin.000002', createReadStream(join(data, 'mysql-bin.000002')));
    expect(a).toMatchObject({ startState: '', endState: '0-100-7', firstGtid: '0-100-1', lastGtid: '0-100-7', transactions: 7, serverId: 100 });
    expect(a.closedAt).toBeGreaterThanOrEqual(Math.floor(marks.slow!.after));
    expect(b).toMatchObject({ startState: '0-100-7', closedAt: null });
    // The latest commit time is the slow statement's: stamped at its start, after the long COMMIT.
    expect(a.lastEventTime).toBe(Math.floor(marks.slow!.before));
  });
});
