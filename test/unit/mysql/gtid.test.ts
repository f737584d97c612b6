import { describe, expect, it } from 'vitest';
import { compareGtid, gtidCovers, gtidDistance, isGtidState, mostAdvanced } from '../../../agent/mysql/gtid.js';

describe('MariaDB GTID positions', () => {
  it('orders one domain by sequence number, whatever the server id', () => {
    expect(compareGtid('0-100-33', '0-100-28')).toBe('ahead');
    expect(compareGtid('0-100-28', '0-100-33')).toBe('behind');
    expect(compareGtid('0-100-33', '0-100-33')).toBe('equal');
    expect(compareGtid('0-101-33', '0-100-33')).toBe('equal');
  });

  it('needs every domain of the other to be at least as far', () => {
    expect(compareGtid('0-100-10,1-101-5', '0-100-10')).toBe('ahead');
    expect(compareGtid('0-100-10,1-101-5', '0-100-11,1-101-4')).toBe('diverged');
    expect(compareGtid('1-101-5,0-100-10', '0-100-10,1-101-5')).toBe('equal');
  });

  it('compares sequence numbers as numbers, beyond 2^53', () => {
    expect(compareGtid('0-1-9', '0-1-10')).toBe('behind');
    expect(compareGtid('0-1-18446744073709551615', '0-1-18446744073709551614')).toBe('ahead');
  });

  it('treats the empty state as behind everything', () => {
    expect(compareGtid('', '')).toBe('equal');
    expect(compareGtid('0-100-1', '')).toBe('ahead');
    expect(gtidCovers('', '0-100-1')).toBe(false);
  });
});

describe('MySQL GTID sets', () => {
  const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
  const B = '4e11fa47-71ca-11e1-9e33-c80aa9429562';

  it('is set inclusion over merged intervals', () => {
    expect(gtidCovers(`${A}:1-10`, `${A}:1-5:7`)).toBe(true);
    expect(gtidCovers(`${A}:1-5:6-10`, `${A}:3-8`)).toBe(true);
    expect(gtidCovers(`${A}:1-5:7-10`, `${A}:3-8`)).toBe(false);
    expect(compareGtid(`${A}:1-10,${B}:1-3`, `${A}:1-10`)).toBe('ahead');
    expect(compareGtid(`${A}:1-10`, `${B}:1-3`)).toBe('diverged');
  });

  it('ignores case of the UUID and whitespace of multi-line sets', () => {
    expect(compareGtid(`${A.toUpperCase()}:1-10,\n${B}:1`, `${B}:1,${A}:1-10`)).toBe('equal');
  });

  it('keeps tagged GTIDs (8.4) apart from untagged ones', () => {
    expect(gtidCovers(`${A}:1-5:red:1-3`, `${A}:red:2`)).toBe(true);
    expect(gtidCovers(`${A}:1-5`, `${A}:red:2`)).toBe(false);
  });

  it('never calls a MariaDB position and a MySQL set comparable', () => {
    expect(compareGtid(`${A}:1-10`, '0-100-10')).toBe('diverged');
  });
});

describe('isGtidState', () => {
  it('accepts positions, sets and the empty state; refuses anything else', () => {
    expect(isGtidState('0-100-12,1-2-3')).toBe(true);
    expect(isGtidState('')).toBe(true);
    expect(isGtidState('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-3')).toBe(true);
    expect(isGtidState("0-100-12'; DROP")).toBe(false);
    expect(isGtidState('mysql-bin.000001:4')).toBe(false);
  });
});

describe('mostAdvanced', () => {
  const g = (x: { gtid: string }) => x.gtid;
  it('returns every item at the highest state, and the ones behind', () => {
    const a = { gtid: '0-100-33' };
    const b = { gtid: '0-100-28' };
    const c = { gtid: '0-100-33' };
    expect(mostAdvanced([a, b, c], g)).toEqual({ best: [a, c], behind: [b] });
  });

  it('returns null when no item has everything the others have', () => {
    expect(mostAdvanced([{ gtid: '0-1-5,1-1-1' }, { gtid: '0-1-4,1-1-2' }], g)).toBeNull();
  });
});

describe('gtidDistance: how many transactions one state lacks of another', () => {
  it('MariaDB: the sequence numbers apart, summed over the domains', () => {
    expect(gtidDistance('0-100-33', '0-100-28')).toBe(5);
    expect(gtidDistance('0-100-33', '0-100-33')).toBe(0);
    expect(gtidDistance('0-100-10,1-101-5', '0-100-7')).toBe(8);
    expect(gtidDistance('0-100-10,1-101-5', '1-101-5,0-100-10')).toBe(0);
    expect(gtidDistance('0-100-33', '')).toBe(33);
  });

  it('MySQL: the transactions of the one set missing from the other', () => {
    const u = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    const v = '4f22ab58-82db-22f2-af44-d91bb0530673';
    expect(gtidDistance(`${u}:1-100`, `${u}:1-90`)).toBe(10);
    expect(gtidDistance(`${u}:1-100:200-209,${v}:1-5`, `${u}:1-50:60-100`)).toBe(9 + 10 + 5);
    expect(gtidDistance(`${u}:1-100`, '')).toBe(100);
    // MySQL 8.4 tags are their own transactions.
    expect(gtidDistance(`${u}:1-10:mytag:1-3`, `${u}:1-10`)).toBe(3);
  });

  it('is null where the sets do not allow it: the other is ahead, diverged, another flavor, or not a GTID state', () => {
    expect(gtidDistance('0-100-28', '0-100-33')).toBeNull();
    expect(gtidDistance('0-100-10,1-101-5', '0-100-11')).toBeNull();
    expect(gtidDistance('0-100-10', '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5')).toBeNull();
    expect(gtidDistance('0-100-10', 'mysql-bin.000001:154')).toBeNull();
  });
});
