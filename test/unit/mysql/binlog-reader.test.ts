/**
 * The binary log reader on real MariaDB 10.11 files (test/fixtures/binlog, made as its README
 * says): every event it finds is the one `mariadb-binlog` printed for the same bytes, and the
 * summary chains the two files by GTID state. A flipped byte or a cut file is an error.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BinlogFormatError, EVENT, type BinlogEvent, binlogTransactions, readBinlogEvents, summarizeBinlog } from '../../../agent/mysql/binlog.js';

const DIR = join(import.meta.dirname, '../../fixtures/binlog');
const bytes = (name: string) => readFileSync(join(DIR, name));
async function* chunked(buf: Buffer, size = 7) {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}
async function events(name: string, buf = bytes(name), size?: number): Promise<BinlogEvent[]> {
  const out: BinlogEvent[] = [];
  for await (const batch of readBinlogEvents(name, chunked(buf, size))) out.push(...batch);
  return out;
}

/** `# at N` + `#YYMMDD HH:MM:SS server id S  end_log_pos E …<TAB>What` pairs of mariadb-binlog's text (printed with TZ=UTC). */
function printed(name: string) {
  const lines = readFileSync(join(DIR, `${name}.txt`), 'utf8').split('\n');
  const out: { at: number; end: number; time: number; serverId: number; what: string }[] = [];
  for (let i = 0; i < lines.length - 1; i++) {
    const at = /^# at (\d+)$/.exec(lines[i]!);
    const head = /^#(\d\d)(\d\d)(\d\d) +(\d+):(\d\d):(\d\d) server id (\d+) +end_log_pos (\d+) CRC32 0x[0-9a-f]{8}\s+(.*)$/.exec(lines[i + 1]!);
    if (!at || !head) continue;
    const [, yy, mo, dd, hh, mi, ss, sid, end, what] = head;
    out.push({ at: Number(at[1]), end: Number(end), time: Date.UTC(2000 + Number(yy), Number(mo) - 1, Number(dd), Number(hh), Number(mi), Number(ss)) / 1000, serverId: Number(sid), what: what! });
  }
  return out;
}

const typeOf = (what: string) =>
  what.startsWith('Start: binlog v 4') ? EVENT.FORMAT_DESCRIPTION
  : what.startsWith('Gtid list') ? EVENT.GTID_LIST
  : what.startsWith('Binlog checkpoint') ? EVENT.BINLOG_CHECKPOINT
  : what.startsWith('GTID ') ? EVENT.GTID
  : what.startsWith('Query') ? EVENT.QUERY
  : what.startsWith('Xid') ? EVENT.XID
  : what.startsWith('Rotate to') ? EVENT.ROTATE
  : undefined;

describe('readBinlogEvents on MariaDB 10.11 files', () => {
  for (const name of ['mysql-bin.000001', 'mysql-bin.000002']) {
    it(`${name}: every event at the offset, time, server id and end mariadb-binlog printed, GTIDs and rotations alike`, async () => {
      const mine = await events(name);
      const theirs = printed(name);
      expect(theirs.length).toBeGreaterThan(5);
      // mariadb-binlog prints the format description's end too; the rest line up one to one.
      expect(mine.map((e) => ({ at: e.at, end: e.end, time: e.time, serverId: e.serverId }))).toEqual(theirs.map(({ at, end, time, serverId }) => ({ at, end, time, serverId })));
      theirs.forEach((t, i) => {
        const type = typeOf(t.what);
        if (type !== undefined) expect(mine[i]!.type, t.what).toBe(type);
        const gtid = /^GTID (\d+-\d+-\d+)/.exec(t.what);
        if (gtid) expect(mine[i]!.gtid).toBe(gtid[1]);
        const list = /^Gtid list \[(.*)\]/.exec(t.what);
        if (list) expect(mine[i]!.gtidList).toBe(list[1]!.replace(/\s/g, ''));
        const rotate = /^Rotate to (\S+)/.exec(t.what);
        if (rotate) expect(mine[i]!.rotateTo).toBe(rotate[1]);
      });
    });
  }

  it("checks the open file's format description CRC32 with its in-use flag clear, as the server computed it", async () => {
    expect(bytes('mysql-bin.000002')[4 + 17]! & 1).toBe(1);
    expect(bytes('mysql-bin.000001')[4 + 17]! & 1).toBe(0);
    expect((await events('mysql-bin.000002'))[0]!.type).toBe(EVENT.FORMAT_DESCRIPTION);
  });

  it('reads the same events whatever the chunk size', async () => {
    const one = await events('mysql-bin.000001', undefined, 1);
    expect(await events('mysql-bin.000001', undefined, 1 << 20)).toEqual(one);
  });

  it('a flipped byte fails the CRC32 naming the event offset; a cut file names where it ends', async () => {
    const buf = Buffer.from(bytes('mysql-bin.000001'));
    const victim = (await events('mysql-bin.000001')).find((e) => e.type === EVENT.QUERY)!;
    buf[victim.at + 25] ^= 0x01;
    await expect(events('mysql-bin.000001', buf)).rejects.toThrow(new BinlogFormatError(`mysql-bin.000001: CRC32 mismatch at offset ${victim.at}`));
    const cut = bytes('mysql-bin.000001').subarray(0, victim.at + 10);
    await expect(events('mysql-bin.000001', cut)).rejects.toThrow(`mysql-bin.000001: file ends inside an event (10 bytes left) at offset ${victim.at}`);
    await expect(events('x', Buffer.from('hello world'))).rejects.toThrow('x: not a binary log (no \\xfebin magic) at offset 0');
  });
});

describe('summarizeBinlog', () => {
  it('summarises each file and the second starts where the first ended', async () => {
    const a = await summarizeBinlog('mysql-bin.000001', chunked(bytes('mysql-bin.000001'), 4096));
    const b = await summarizeBinlog('mysql-bin.000002', chunked(bytes('mysql-bin.000002'), 4096));
    expect(a.sha256).toBe(createHash('sha256').update(bytes('mysql-bin.000001')).digest('hex'));
    expect(a).toMatchObject({ size: bytes('mysql-bin.000001').length, startState: '', endState: '0-100-8', firstGtid: '0-100-1', lastGtid: '0-100-8', transactions: 8, serverId: 100 });
    expect(b).toMatchObject({ startState: a.endState, endState: '0-100-10', closedAt: null, transactions: 2 });
    expect(a.closedAt).toBe(printed('mysql-bin.000001').at(-1)!.time);
    const transactions = await binlogTransactions('mysql-bin.000001', chunked(bytes('mysql-bin.000001'), 4096));
    // The long transaction: stamped with its Xid (the COMMIT), 3 s after its first INSERT.
    expect(transactions.map((t) => t.gtid)).toEqual(['0-100-1', '0-100-2', '0-100-3', '0-100-4', '0-100-5', '0-100-6', '0-100-7', '0-100-8']);
    expect(transactions.at(-1)!.end).toBe(1774);
    expect(transactions[6]!.commitTime - (await events('mysql-bin.000001')).find((e) => e.at === 1339)!.time).toBe(3);
  });
});
