/**
 * The archive's pure parts: keys that cannot collide across servers, the index record's round
 * trip, the archiver's choice of files and its gap rule, and the head of a real file read without
 * reading the rest.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBinlogEvents, readBinlogHead, summarizeBinlog } from '../../../agent/mysql/binlog.js';
import {
  type BinlogIndexRecord,
  archiveChain,
  archiveOrder,
  archiveWork,
  binlogDataKey,
  binlogIndexKey,
  formatIndexRecord,
  indexKeys,
  parseIndexRecord,
} from '../../../agent/store/binlog-archive.js';

const DIR = join(import.meta.dirname, '../../fixtures/binlog');
async function* chunked(buf: Buffer, size = 4096) {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}
const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

describe('binlog archive keys', () => {
  it('put the server id and the content hash in the key: the same name of two servers or two incarnations never collides', () => {
    expect(binlogDataKey('c/', 100, 'mysql-bin.000001', SHA_A)).toBe('c/mysql-agent/binlogs/100/mysql-bin.000001-aaaaaaaaaaaaaaaa');
    expect(binlogDataKey('c/', 100, 'mysql-bin.000001', SHA_B)).not.toBe(binlogDataKey('c/', 100, 'mysql-bin.000001', SHA_A));
    expect(binlogDataKey('c/', 101, 'mysql-bin.000001', SHA_A)).not.toBe(binlogDataKey('c/', 100, 'mysql-bin.000001', SHA_A));
    expect(binlogIndexKey('c/', 100, 'mysql-bin.000001', SHA_A)).toBe(`${binlogDataKey('c/', 100, 'mysql-bin.000001', SHA_A)}.json`);
  });

  it('lists only index keys, with their server and name', () => {
    const keys = [
      binlogDataKey('c/', 100, 'mysql-bin.000001', SHA_A),
      binlogIndexKey('c/', 100, 'mysql-bin.000001', SHA_A),
      binlogIndexKey('c/', 101, 'mysql-bin.000007', SHA_B),
      'c/mysql-agent/binlogs/100/stray.json',
      'other/mysql-agent/binlogs/100/mysql-bin.000001-aaaaaaaaaaaaaaaa.json',
    ];
    expect(indexKeys('c/', keys)).toEqual([
      { key: keys[1], serverId: 100, name: 'mysql-bin.000001' },
      { key: keys[2], serverId: 101, name: 'mysql-bin.000007' },
    ]);
  });
});

describe('binlog index records', () => {
  it('round-trip a real file summary, and refuse what this agent did not write', async () => {
    const summary = await summarizeBinlog('mysql-bin.000001', chunked(readFileSync(join(DIR, 'mysql-bin.000001'))));
    const record: BinlogIndexRecord = { ...summary, format: 1, key: binlogDataKey('', 100, summary.name, summary.sha256), archived_at: '2026-12-01T10:00:00.000Z' };
    expect(parseIndexRecord(formatIndexRecord(record), 'x.json')).toEqual(record);
    expect(() => parseIndexRecord('{"format":2}', 'x.json')).toThrow('x.json: not a binlog index record of format 1');
    expect(() => parseIndexRecord(formatIndexRecord({ ...record, sha256: 'zz' }), 'x.json')).toThrow('x.json: sha256 is not 64 hex digits');
    expect(() => parseIndexRecord('nope', 'x.json')).toThrow('x.json: not JSON');
  });

  it('orders the archive along the GTID chain, whatever the names and upload order', () => {
    const rec = (name: string, startState: string, archived_at: string) => ({ name, startState, archived_at }) as BinlogIndexRecord;
    const files = [rec('mysql-bin.000001', '0-100-20', '2026-12-01T10:05:00Z'), rec('mysql-bin.000009', '0-100-10', '2026-12-01T10:06:00Z'), rec('mysql-bin.000008', '', '2026-12-01T10:01:00Z')];
    expect(archiveOrder(files).map((f) => f.name)).toEqual(['mysql-bin.000008', 'mysql-bin.000009', 'mysql-bin.000001']);
  });
});

describe('archiveWork', () => {
  const files = (...n: number[]) => n.map((i) => ({ name: `mysql-bin.${String(i).padStart(6, '0')}`, size: 100 }));
  it('takes every closed file not archived, never the open one', () => {
    const archived = new Set(['mysql-bin.000001']);
    expect(archiveWork(files(1, 2, 3), (n) => archived.has(n))).toEqual({ pending: files(2), gapBefore: null });
  });
  it('reports a gap when the oldest file left on the server has no archived predecessor', () => {
    const archived = new Set(['mysql-bin.000001']);
    expect(archiveWork(files(3, 4), (n) => archived.has(n))).toEqual({ pending: files(3), gapBefore: 'mysql-bin.000003' });
    // Its predecessor archived: no gap.
    expect(archiveWork(files(3, 4), (n) => n === 'mysql-bin.000002').gapBefore).toBeNull();
    // A new server's first file has no predecessor.
    expect(archiveWork(files(1), () => false)).toEqual({ pending: [], gapBefore: null });
  });
});

describe('readBinlogHead', () => {
  it("reads a real file's Gtid_list and its first transaction's time, and stops there", async () => {
    const buf = readFileSync(join(DIR, 'mysql-bin.000002'));
    const summary = await summarizeBinlog('mysql-bin.000002', chunked(buf));
    let read = 0;
    async function* counted() {
      for await (const c of chunked(buf, 64)) {
        read += c.length;
        yield c;
      }
    }
    const head = await readBinlogHead('mysql-bin.000002', counted());
    expect(head).toEqual({ startState: summary.startState, firstTransactionTime: summary.firstEventTime });
    expect(read).toBeLessThan(buf.length);
  });
  it('says there is no transaction in a file that holds none yet', async () => {
    const buf = readFileSync(join(DIR, 'mysql-bin.000002'));
    // The format description, Gtid_list and checkpoint of a freshly rotated file: up to the first GTID event.
    const summary = await summarizeBinlog('mysql-bin.000002', chunked(buf));
    let cut = 0;
    for await (const batch of readBinlogEvents('x', chunked(buf))) for (const e of batch) if (e.gtid !== undefined && cut === 0) cut = e.at;
    expect(await readBinlogHead('x', chunked(buf.subarray(0, cut)))).toEqual({ startState: summary.startState, firstTransactionTime: null });
  });
});

describe('archiveChain', () => {
  const rec = (name: string, startState: string, endState: string, archived_at: string) => ({ name, startState, endState, archived_at }) as BinlogIndexRecord;
  it("follows one history: a restored primary's files that branch off are left out, a missing file stays a gap", async () => {
    const a1 = rec('mysql-bin.000001', '', '0-100-100', '2026-12-01T10:00:00Z');
    const a2 = rec('mysql-bin.000002', '0-100-100', '0-100-200', '2026-12-01T10:01:00Z');
    const a3 = rec('mysql-bin.000003', '0-100-200', '0-100-300', '2026-12-01T10:02:00Z');
    const a5 = rec('mysql-bin.000005', '0-100-400', '0-100-500', '2026-12-01T10:04:00Z');
    // Cluster B restored to 0-100-163 archives into the same prefix: its files sort among A's.
    const b1 = rec('mysql-bin.000001', '0-100-163', '0-100-170', '2026-12-01T11:00:00Z');
    const b2 = rec('mysql-bin.000002', '0-100-170', '0-100-180', '2026-12-01T11:01:00Z');
    const all = [b2, a3, b1, a5, a1, a2];
    expect(archiveChain(all, '0-100-50').map((r) => `${r.archived_at.slice(11, 16)} ${r.name}`)).toEqual([
      '10:00 mysql-bin.000001',
      '10:01 mysql-bin.000002',
      '10:02 mysql-bin.000003',
      // 000004 is missing: the next file beyond is kept, so the gap is seen.
      '10:04 mysql-bin.000005',
    ]);
    // From a backup of B's history after 0-100-163 the GTIDs alone cannot tell the branches
    // apart (B continues A's sequence numbers under the same server_id): README says so.
    expect(archiveChain(all, '0-100-180').map((r) => r.name)).toEqual(['mysql-bin.000002', 'mysql-bin.000003', 'mysql-bin.000005']);
  });
});
