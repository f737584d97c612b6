import { describe, expect, it } from 'vitest';
import { ParseError } from '../../../agent/core/errors.js';
import {
  atLeast,
  hasChangeReplicationSource,
  hasReplicaKeyword,
  needsPublicKeyFetch,
  parseServerVersion,
} from '../../../agent/mysql/server-version.js';

describe('parseServerVersion', () => {
  it('reads a Debian MariaDB version', () => {
    expect(parseServerVersion('10.11.19-MariaDB-0+deb12u1', 'Debian 12')).toEqual({
      flavor: 'mariadb',
      major: 10,
      minor: 11,
      patch: 19,
      text: '10.11.19-MariaDB-0+deb12u1',
    });
  });

  it('reads MySQL 8.4.3 with its comment', () => {
    expect(parseServerVersion('8.4.3', 'MySQL Community Server - GPL')).toEqual({
      flavor: 'mysql',
      major: 8,
      minor: 4,
      patch: 3,
      text: '8.4.3',
    });
  });

  it('reads 5.7.44-log as MySQL', () => {
    expect(parseServerVersion('5.7.44-log')).toMatchObject({ flavor: 'mysql', major: 5, minor: 7, patch: 44 });
  });

  it('recognises MariaDB from the comment alone', () => {
    expect(parseServerVersion('10.6.16', 'mariadb.org binary distribution').flavor).toBe('mariadb');
  });

  it.each(['garbage', '', '8.4', 'v8.4.3', 'MariaDB 10.11.19'])('refuses %j with a ParseError', (text) => {
    expect(() => parseServerVersion(text)).toThrow(ParseError);
  });
});

describe('atLeast', () => {
  const v = (text: string) => parseServerVersion(text);

  it('compares patch at equal major and minor', () => {
    expect(atLeast(v('8.0.22'), 8, 0, 22)).toBe(true);
    expect(atLeast(v('8.0.21'), 8, 0, 22)).toBe(false);
    expect(atLeast(v('8.0.23'), 8, 0, 22)).toBe(true);
  });

  it('lets a higher minor or major win whatever the patch', () => {
    expect(atLeast(v('8.1.0'), 8, 0, 23)).toBe(true);
    expect(atLeast(v('9.0.0'), 8, 4, 99)).toBe(true);
    expect(atLeast(v('8.0.99'), 8, 1)).toBe(false);
    expect(atLeast(v('7.9.99'), 8)).toBe(false);
  });

  it('defaults minor and patch to 0', () => {
    expect(atLeast(v('8.0.0'), 8)).toBe(true);
    expect(atLeast(v('10.11.0'), 10, 11)).toBe(true);
  });
});

describe('capabilities', () => {
  const mysql = (text: string) => parseServerVersion(text, 'MySQL Community Server - GPL');
  const mariadb = parseServerVersion('10.11.19-MariaDB-0+deb12u1');

  it('START REPLICA from MySQL 8.0.22, never on MariaDB', () => {
    expect(hasReplicaKeyword(mysql('8.0.21'))).toBe(false);
    expect(hasReplicaKeyword(mysql('8.0.22'))).toBe(true);
    expect(hasReplicaKeyword(mariadb)).toBe(false);
  });

  it('CHANGE REPLICATION SOURCE from MySQL 8.0.23, never on MariaDB', () => {
    expect(hasChangeReplicationSource(mysql('8.0.22'))).toBe(false);
    expect(hasChangeReplicationSource(mysql('8.0.23'))).toBe(true);
    expect(hasChangeReplicationSource(mysql('8.4.3'))).toBe(true);
    expect(hasChangeReplicationSource(mariadb)).toBe(false);
  });

  it('public-key fetch from MySQL 8.0, not on 5.7 or MariaDB', () => {
    expect(needsPublicKeyFetch(mysql('5.7.44'))).toBe(false);
    expect(needsPublicKeyFetch(mysql('8.0.0'))).toBe(true);
    expect(needsPublicKeyFetch(mariadb)).toBe(false);
  });
});
