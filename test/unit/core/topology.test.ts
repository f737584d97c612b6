import { describe, expect, it } from 'vitest';
import { type Ordinal, hostPort, parsePodName, peerHost, roleOf, serverIdOf } from '../../../agent/core/topology.js';

const ord = (n: number) => n as Ordinal;

describe('parsePodName', () => {
  it('splits a StatefulSet pod name into set and ordinal', () => {
    expect(parsePodName('mysql-0')).toEqual({ set: 'mysql', ordinal: 0 });
    expect(parsePodName('mysql-2')).toEqual({ set: 'mysql', ordinal: 2 });
  });

  it('keeps dashes of the set name and takes only the trailing -N', () => {
    expect(parsePodName('web-db-12')).toEqual({ set: 'web-db', ordinal: 12 });
  });

  it.each(['mysql', 'mysql-', 'mysql-01', 'mysql-1a', 'Mysql-1', '-1', ''])('refuses %j', (name) => {
    expect(parsePodName(name)).toBeNull();
  });
});

describe('roleOf', () => {
  it('makes ordinal 0 the primary and every other ordinal a replica', () => {
    expect(roleOf(ord(0))).toBe('primary');
    expect(roleOf(ord(1))).toBe('replica');
    expect(roleOf(ord(7))).toBe('replica');
  });
});

describe('serverIdOf', () => {
  it('adds the ordinal to the offset', () => {
    expect(serverIdOf(100, ord(0))).toBe(100);
    expect(serverIdOf(100, ord(3))).toBe(103);
    expect(serverIdOf(1, ord(0))).toBe(1);
  });
});

describe('peerHost', () => {
  it('expands {set}, {ordinal} and {service}', () => {
    expect(peerHost('{set}-{ordinal}.{service}', 'mysql', 'mysql', ord(1))).toBe('mysql-1.mysql');
    expect(peerHost('{set}-{ordinal}.{service}.db.svc.cluster.local', 'web-db', 'web', ord(12))).toBe(
      'web-db-12.web.db.svc.cluster.local',
    );
  });

  it('expands every occurrence of a placeholder', () => {
    expect(peerHost('{ordinal}-{set}-{ordinal}', 's', 'x', ord(4))).toBe('4-s-4');
  });

  it('leaves a template without placeholders as it is', () => {
    expect(peerHost('static.example', 's', 'x', ord(4))).toBe('static.example');
  });
});

describe('hostPort', () => {
  it('brackets an IPv6 literal, as URLs and log lines write it', () => {
    expect(hostPort('fd00::12', 3307)).toBe('[fd00::12]:3307');
    expect(hostPort('::1', 3307)).toBe('[::1]:3307');
    expect(hostPort('127.0.0.12', 3307)).toBe('127.0.0.12:3307');
    expect(hostPort('mysql-2.mysql', 3307)).toBe('mysql-2.mysql:3307');
  });
});
