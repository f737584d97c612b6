import { describe, expect, it } from 'vitest';
import { ConfigError, ParseError } from '../../../agent/core/errors.js';
import { judgeLock } from '../../../agent/store/lock.js';
import { type BackupId, backupsPrefix, dataKey, drillKey, groupKeys, idTime, isBackupId, lockKey, manifestKey, newBackupId, newestFirst } from '../../../agent/store/layout.js';
import { type DrillVerdict, type Manifest, formatJson, parseDrillVerdict, parseManifest } from '../../../agent/store/manifest.js';
import { planRetention } from '../../../agent/store/retention.js';
import { MAX_PARTS, PART_BYTES, PARTS_IN_FLIGHT, partPlan } from '../../../agent/store/s3.js';
import { parseStoreUrl } from '../../../agent/store/settings.js';

describe('BACKUP_STORE_URL', () => {
  it('splits bucket and prefix, normalising slashes', () => {
    expect(parseStoreUrl('s3://backups')).toEqual({ bucket: 'backups', prefix: '' });
    expect(parseStoreUrl('s3://backups/')).toEqual({ bucket: 'backups', prefix: '' });
    expect(parseStoreUrl('s3://my.backups/prod//mysql/')).toEqual({ bucket: 'my.backups', prefix: 'prod/mysql/' });
  });
  it('refuses what is no S3 URL, bucket or safe prefix, naming the variable', () => {
    for (const bad of ['backups', 'https://x/y', 's3://B', 's3://ab', 's3://a..b', 's3://bucket/../x', 's3://bucket/a b', 's3://bucket/a%2f']) {
      expect(() => parseStoreUrl(bad), bad).toThrow(ConfigError);
      expect(() => parseStoreUrl(bad), bad).toThrow(/^BACKUP_STORE_URL=/);
    }
  });
});

describe('object layout', () => {
  it('ids carry the start time to the millisecond, and give it back', () => {
    const a = newBackupId(new Date('2026-12-01T10:15:30.999Z'), () => 0.99);
    const b = newBackupId(new Date('2026-12-01T10:15:31.000Z'), () => 0);
    expect(a).toBe('20261201T101530.999Z-fd70a3');
    expect(b).toBe('20261201T101531.000Z-000000');
    expect(idTime(a).toISOString()).toBe('2026-12-01T10:15:30.999Z');
    expect(idTime('20261201T101530Z-fd70a3' as BackupId).toISOString()).toBe('2026-12-01T10:15:30.000Z');
    for (const good of ['20261201T101530.999Z-fd70a3', '20261201T101530Z-fd70a3']) expect(isBackupId(good)).toBe(true);
    for (const bad of ['20261201T101530Z', '20261201T101530.1Z-fd70a3', '20261201T101530.999-fd70a3', '20261201T101530Z-FD70A3', 'x20261201T101530Z-fd70a3', '../x']) expect(isBackupId(bad)).toBe(false);
  });
  it('orders two backups of one second by their start, not by their random part (and ids of earlier builds by time too)', () => {
    const first = newBackupId(new Date('2026-12-01T10:15:30.100Z'), () => 0.99);
    const second = newBackupId(new Date('2026-12-01T10:15:30.900Z'), () => 0);
    const older = '20261201T101529Z-ffffff' as BackupId;
    const sameSecondOld = '20261201T101530Z-ffffff' as BackupId;
    expect([older, first, sameSecondOld, second].sort(newestFirst)).toEqual([second, first, sameSecondOld, older]);
    const keys = [first, second, older].map((id) => manifestKey('', id));
    expect(groupKeys('', keys).map((g) => g.id)).toEqual([second, first, older]);
  });
  it('puts everything of a backup under its id, under the prefix', () => {
    const id = '20261201T101530Z-fd70a3' as BackupId;
    expect(dataKey('prod/', id, 'zstd')).toBe('prod/mysql-agent/backups/20261201T101530Z-fd70a3/data.xbstream.zst');
    expect(dataKey('', id, 'none')).toBe('mysql-agent/backups/20261201T101530Z-fd70a3/data.xbstream');
    expect(manifestKey('', id)).toBe('mysql-agent/backups/20261201T101530Z-fd70a3/manifest.json');
    expect(drillKey('p/', id)).toBe('p/mysql-agent/backups/20261201T101530Z-fd70a3/drill.json');
    expect(lockKey('p/')).toBe('p/mysql-agent/lock.json');
  });
  it('groups listed keys by id, newest first, ignoring keys that are not a backup of this layout', () => {
    const p = 'c1/';
    const keys = [
      `${backupsPrefix(p)}20261201T000000Z-aaaaaa/data.xbstream.zst`,
      `${backupsPrefix(p)}20261201T000000Z-aaaaaa/manifest.json`,
      `${backupsPrefix(p)}20261202T000000Z-bbbbbb/data.xbstream.zst`,
      `${backupsPrefix(p)}not-an-id/manifest.json`,
      'c1/mysql-agent/lock.json',
      'c2/mysql-agent/backups/20261203T000000Z-cccccc/manifest.json',
    ];
    const groups = groupKeys(p, keys);
    expect(groups.map((g) => [g.id, g.hasManifest, g.keys.length])).toEqual([
      ['20261202T000000Z-bbbbbb', false, 1],
      ['20261201T000000Z-aaaaaa', true, 2],
    ]);
  });
});

const stored = (id: string, hasManifest = true) => ({ id: id as BackupId, hasManifest, hasDrill: false, keys: [`k/${id}`] });

describe('retention', () => {
  const complete = ['20261207T000000Z-000007', '20261206T000000Z-000006', '20261205T000000Z-000005', '20261204T000000Z-000004'].map((i) => stored(i));
  it('keeps BACKUP_KEEP complete backups and deletes the older ones', () => {
    expect(planRetention(complete, 2, []).expired.map((b) => b.id)).toEqual(['20261205T000000Z-000005', '20261204T000000Z-000004']);
    expect(planRetention(complete, 7, []).expired).toEqual([]);
  });
  it('never deletes the newest complete backup, even with keep 0', () => {
    expect(planRetention(complete, 0, []).expired.map((b) => b.id)).not.toContain('20261207T000000Z-000007');
  });
  it('never touches the id being written; deletes the leftovers of killed runs', () => {
    const writing = stored('20261208T000000Z-000008', false);
    const killed = stored('20261203T000000Z-000003', false);
    const plan = planRetention([writing, ...complete, killed], 1, [writing.id]);
    expect(plan.leftovers.map((b) => b.id)).toEqual([killed.id]);
    expect(plan.expired.map((b) => b.id)).not.toContain(writing.id);
    expect(plan.expired.map((b) => b.id)).toEqual(complete.slice(1).map((b) => b.id));
  });
});

const manifest: Manifest = {
  format: 1,
  id: '20261201T101530Z-fd70a3' as BackupId,
  started_at: '2026-12-01T10:15:30.000Z',
  finished_at: '2026-12-01T10:16:00.000Z',
  source: { host: 'mysql-2.mysql', pod: 'mysql-2', ordinal: 2, role: 'replica', choice: 'auto', why: 'replica 0 s behind' },
  server: { flavor: 'mariadb', version: '10.11.19-MariaDB', tool_version: '10.11.19-MariaDB' },
  data: { key: 'mysql-agent/backups/20261201T101530Z-fd70a3/data.xbstream.zst', compression: 'zstd', raw_bytes: 1000, stored_bytes: 400, sha256: 'a'.repeat(64) },
  coordinates: { from: 'slave_info', binlog_file: null, binlog_pos: null, gtid: '0-100-12' },
  info_files: { xtrabackup_slave_info: "SET GLOBAL gtid_slave_pos = '0-100-12';\nCHANGE MASTER TO master_use_gtid = slave_pos;\n" },
};

describe('manifest', () => {
  it('round-trips through format and parse', () => {
    expect(parseManifest(formatJson(manifest))).toEqual(manifest);
  });
  it('refuses what is not a manifest of this agent, naming the field', () => {
    const broken = (patch: (m: Record<string, any>) => void) => {
      const m = JSON.parse(formatJson(manifest));
      patch(m);
      return JSON.stringify(m);
    };
    const cases: [string, string][] = [
      ['{', 'is not JSON'],
      ['[]', 'is not a JSON object'],
      [broken((m) => (m.format = 2)), 'format'],
      [broken((m) => (m.id = '../../etc')), 'id'],
      [broken((m) => (m.data.sha256 = 'xyz')), 'data.sha256'],
      [broken((m) => (m.data.raw_bytes = -1)), 'data.raw_bytes'],
      [broken((m) => (m.data.compression = 'gzip')), 'data.compression'],
      [broken((m) => delete m.coordinates), 'coordinates'],
      [broken((m) => (m.started_at = 'yesterday')), 'started_at'],
    ];
    for (const [text, field] of cases) {
      expect(() => parseManifest(text), field).toThrow(ParseError);
      expect(() => parseManifest(text), field).toThrow(field);
    }
  });
  it('drill verdicts round-trip too', () => {
    const v: DrillVerdict = { id: manifest.id, verified_at: '2026-12-02T00:00:00.000Z', ok: false, tables_checked: 3, rows: 10, duration_ms: 5000, failure: 'CHECK TABLE t1: corrupt', tables: { 'db.t1': 10 } };
    expect(parseDrillVerdict(formatJson(v))).toEqual(v);
    expect(() => parseDrillVerdict('{"ok":"yes"}')).toThrow(ParseError);
  });
});

describe('the store lock', () => {
  const now = Date.parse('2026-12-01T10:00:00Z');
  const body = (renewed: string) => JSON.stringify({ id: '20261201T095900Z-000001', host: 'h', started_at: renewed, renewed_at: renewed });
  it('is held while renewed within the stale time, stale after it or when unreadable', () => {
    expect(judgeLock(body('2026-12-01T09:59:00Z'), now).kind).toBe('held');
    expect(judgeLock(body('2026-12-01T09:50:00Z'), now).kind).toBe('stale');
    expect(judgeLock('garbage', now).kind).toBe('stale');
    expect(judgeLock(null, now).kind).toBe('stale');
  });
});

import { parseGtidList } from '../../../agent/mysql/db.js';
import { seedProblem } from '../../../agent/init/restore.js';
import type { PeerReport, PeerStatus } from '../../../agent/cluster/peer-status.js';

describe('seeding a replica from a backup', () => {
  const primary = (binlogStartGtid: string | null): PeerReport => ({
    ordinal: 0,
    host: 'mysql-0.mysql',
    error: null,
    status: { role: 'primary', binlogStartGtid } as PeerStatus,
  });
  it("reads MariaDB's Gtid_list event", () => {
    expect(parseGtidList('[0-100-5,1-100-3]')).toBe('0-100-5,1-100-3');
    expect(parseGtidList('[]')).toBe('');
    expect(parseGtidList('Server ver: 10.11')).toBeNull();
  });
  it('seeds only when the primary still has the binary logs from the backup GTID', () => {
    expect(seedProblem(manifest, primary(''))).toBeNull();
    expect(seedProblem(manifest, primary('0-100-12'))).toBeNull();
    expect(seedProblem(manifest, primary('0-100-13'))).toMatch(/^the primary no longer has the binary logs from the newest backup's GTID 0-100-12 \(its oldest binary log begins after 0-100-13\)/);
    expect(seedProblem(manifest, primary(null))).toMatch(/does not say where its binary logs begin/);
    expect(seedProblem(manifest, { ...primary(''), status: null, error: 'ECONNREFUSED' })).toMatch(/did not answer \/status \(ECONNREFUSED\)/);
    expect(seedProblem({ ...manifest, coordinates: { ...manifest.coordinates, gtid: null } }, primary(''))).toMatch(/carries no GTID/);
  });
});

describe('partPlan', () => {
  const MiB = 1024 * 1024;
  it('keeps 5 MiB parts (S3 takes none smaller), 2 in flight, up to the estimate 10,000 of them hold with a quarter to spare', () => {
    expect(PART_BYTES).toBe(5 * MiB);
    for (const expected of [null, 0, 1e9, (MAX_PARTS * PART_BYTES) / 1.25]) expect(partPlan(expected), String(expected)).toEqual({ partBytes: PART_BYTES, inFlight: PARTS_IN_FLIGHT });
  });
  it('grows the parts in whole MiB past it, as many in flight', () => {
    expect(PARTS_IN_FLIGHT).toBe(2);
    expect(partPlan((MAX_PARTS * PART_BYTES) / 1.25 + 1)).toEqual({ partBytes: 6 * MiB, inFlight: 2 });
    expect(partPlan(96_000 * MiB)).toEqual({ partBytes: 12 * MiB, inFlight: 2 });
    expect(partPlan(500e9)).toEqual({ partBytes: 60 * MiB, inFlight: 2 });
    for (const expected of [1e11, 3.3e11, 5e12]) {
      const { partBytes } = partPlan(expected);
      expect(partBytes % MiB).toBe(0);
      expect(partBytes * MAX_PARTS).toBeGreaterThanOrEqual(expected * 1.25);
    }
  });
});
