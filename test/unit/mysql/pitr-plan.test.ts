/** planPointInTime on archive indexes built by hand: which files, which last transaction, which refusal. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type BinlogFileSummary, type BinlogTransaction, advanceState, planPointInTime } from '../../../agent/mysql/binlog.js';

/** A file holding transactions `seqs` of domain 0 (server 100 unless given) committed at `times`, closed at `closedAt`. */
function file(name: string, start: string, seqs: number[], times: number[], closedAt: number | null, server = 100) {
  const sha256 = createHash('sha256').update(`${server}/${name}`).digest('hex');
  const transactions: BinlogTransaction[] = seqs.map((s, i) => ({ gtid: `0-${server}-${s}`, commitTime: times[i]!, end: 1000 + i }));
  const summary: BinlogFileSummary = {
    name,
    serverId: server,
    startState: start,
    endState: transactions.reduce((st, t) => advanceState(st, t.gtid), start),
    firstGtid: transactions[0]?.gtid ?? null,
    lastGtid: transactions.at(-1)?.gtid ?? null,
    firstEventTime: times.length ? Math.min(...times) : null,
    lastEventTime: times.length ? Math.max(...times) : null,
    closedAt,
    transactions: transactions.length,
    size: 5000,
    sha256,
  };
  return { summary, transactions };
}

const f1 = file('mysql-bin.000001', '', [1, 2, 3], [1000, 1001, 1002], 1003);
const f2 = file('mysql-bin.000002', '0-100-3', [4, 5, 6], [1004, 1005, 1006], 1007);
const f3 = file('mysql-bin.000003', '0-100-6', [7, 8, 9], [1008, 1010, 1009], 1011);
const all = [f1, f2, f3];
const index = all.map((f) => f.summary);
const txs = new Map(all.map((f) => [f.summary.sha256, f.transactions]));
const backup = { gtid: '0-100-2', takenAt: 1001 };
const names = (p: ReturnType<typeof planPointInTime>) => (p.kind === 'plan' ? p.files.map((f) => f.name) : p);

describe('planPointInTime', () => {
  it('asks for the transactions of the file the moment falls in, then stops at the last one committed by then', () => {
    expect(planPointInTime(backup, index, { time: 1005 })).toEqual({ kind: 'needs-transactions', file: f2.summary });
    const plan = planPointInTime(backup, index, { time: 1005 }, txs);
    expect(plan).toMatchObject({ kind: 'plan', lastEvent: { gtid: '0-100-5', commitTime: 1005 }, options: ['--start-position=0-100-2', '--stop-position=0-100-5'] });
    expect(names(plan)).toEqual(['mysql-bin.000001', 'mysql-bin.000002']);
  });

  it('a moment between two files ends with the earlier file', () => {
    const plan = planPointInTime(backup, index, { time: 1003 }, txs);
    expect(names(plan)).toEqual(['mysql-bin.000001']);
    expect(plan).toMatchObject({ lastEvent: { gtid: '0-100-3' }, options: ['--start-position=0-100-2', '--stop-position=0-100-3'] });
  });

  it('stops at the first transaction committed after the moment, even when a later one carries an earlier second', () => {
    // f3: 0-100-8 at 1010, then 0-100-9 at 1009: at 1009 the prefix ends with 0-100-7 (9 comes after 8).
    expect(planPointInTime(backup, index, { time: 1009 }, txs)).toMatchObject({ lastEvent: { gtid: '0-100-7' }, options: [expect.any(String), '--stop-position=0-100-7'] });
  });

  it('refuses a moment at or past the newest archived file closing, and allows the second before', () => {
    expect(planPointInTime(backup, index, { time: 1011 }, txs)).toMatchObject({ kind: 'refused', reason: 'past-archive' });
    expect(planPointInTime(backup, index, { time: 1011 }, txs)).toHaveProperty('message', expect.stringContaining('mysql-bin.000003, up to 0-100-9, closed 1970-01-01T00:16:51Z'));
    expect(planPointInTime(backup, index, { time: 1010 }, txs)).toMatchObject({ kind: 'plan', lastEvent: { gtid: '0-100-9' } });
  });

  it('refuses a moment before the backup was taken', () => {
    expect(planPointInTime(backup, index, { time: 1000 }, txs)).toMatchObject({ kind: 'refused', reason: 'before-backup' });
  });

  it('a GTID target stops exactly at that GTID; past the archive or before the backup is refused', () => {
    const plan = planPointInTime(backup, index, { gtid: '0-100-7' }, txs);
    expect(names(plan)).toEqual(['mysql-bin.000001', 'mysql-bin.000002', 'mysql-bin.000003']);
    expect(plan).toMatchObject({ lastEvent: { gtid: '0-100-7' }, options: ['--start-position=0-100-2', '--stop-position=0-100-7'] });
    expect(planPointInTime(backup, index, { gtid: '0-100-10' }, txs)).toMatchObject({ kind: 'refused', reason: 'past-archive' });
    expect(planPointInTime(backup, index, { gtid: '0-100-1' }, txs)).toMatchObject({ kind: 'refused', reason: 'before-backup' });
    expect(planPointInTime(backup, index, { gtid: 'yesterday' }, txs)).toMatchObject({ kind: 'refused', reason: 'not-in-archive' });
  });

  it('a target equal to the backup replays nothing', () => {
    expect(planPointInTime(backup, index, { gtid: '0-100-2' }, txs)).toEqual({ kind: 'plan', files: [], lastEvent: null, options: [] });
  });

  it('a missing file is a gap: a point past it is refused naming both sides, one before it is planned', () => {
    const gapped = [f1.summary, f3.summary];
    const refused = planPointInTime(backup, gapped, { time: 1009 }, txs);
    expect(refused).toMatchObject({ kind: 'refused', reason: 'gap' });
    expect(refused).toHaveProperty('message', 'gap: mysql-bin.000001 ends at 0-100-3 but mysql-bin.000003 starts at 0-100-6; a point up to 0-100-3 (before 1970-01-01T00:16:43Z) is possible');
    expect(planPointInTime(backup, gapped, { gtid: '0-100-8' }, txs)).toMatchObject({ kind: 'refused', reason: 'gap' });
    expect(planPointInTime(backup, gapped, { gtid: '0-100-3' }, txs)).toMatchObject({ kind: 'plan', lastEvent: { gtid: '0-100-3' } });
    expect(planPointInTime(backup, gapped, { time: 1002 }, txs)).toMatchObject({ kind: 'plan', lastEvent: { gtid: '0-100-3' } });
  });

  it('transactions between the backup and the oldest archived file are a gap', () => {
    expect(planPointInTime(backup, [f2.summary, f3.summary], { time: 1005 }, txs)).toMatchObject({ kind: 'refused', reason: 'gap', message: expect.stringContaining('before mysql-bin.000002') });
  });

  it('follows the chain by GTID state across a new server whose file names start again', () => {
    const f4 = file('mysql-bin.000001', '0-100-9', [10, 11], [1012, 1013], 1014, 101);
    const plan = planPointInTime(backup, [...index, f4.summary], { time: 1012 }, new Map([...txs, [f4.summary.sha256, f4.transactions]]));
    // Both histories hold a mysql-bin.000001: transactions are known by the file's SHA-256.
    expect(plan).toMatchObject({ kind: 'plan', lastEvent: { gtid: '0-101-10' }, options: [expect.any(String), '--stop-position=0-101-10'] });
  });

  it('a file without transactions (two rotations in a row) is no gap', () => {
    const empty = file('mysql-bin.000004', '0-100-9', [], [], 1012);
    const f5 = file('mysql-bin.000005', '0-100-9', [10], [1013], 1014);
    const plan = planPointInTime(backup, [...index, empty.summary, f5.summary], { time: 1013 }, new Map([...txs, [f5.summary.sha256, f5.transactions]]));
    expect(plan).toMatchObject({ kind: 'plan', lastEvent: { gtid: '0-100-10' } });
  });
});
