import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ParseError } from '../../../agent/core/errors.js';
import { XbstreamReader } from '../../../agent/stream/xbstream.js';

/** A real stream made by `mbstream -c` from files on disk. */
const dir = mkdtempSync(join(tmpdir(), 'xbstream-test-'));
const binlogInfo = 'mysql-bin.000002\t1234\t0-100-7\n';
writeFileSync(join(dir, 'ibdata1'), randomBytes(3_000_000));
writeFileSync(join(dir, 'xtrabackup_binlog_info'), binlogInfo);
writeFileSync(join(dir, 'xtrabackup_info'), 'tool_version = 10.11.19-MariaDB\n');
writeFileSync(join(dir, 'backup-my.cnf'), '[mysqld]\n');
const stream = execFileSync('mbstream', ['-c', 'ibdata1', 'xtrabackup_binlog_info', 'xtrabackup_info', 'backup-my.cnf'], { cwd: dir, maxBuffer: 1e8 });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function read(bytes: Buffer, piece: (i: number) => number) {
  const r = new XbstreamReader();
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.max(1, piece(i));
    r.push(bytes.subarray(at, at + n));
    at += n;
  }
  return r.finish();
}

describe('xbstream reader', () => {
  it('keeps the info files and names every file, however the stream is cut into reads', () => {
    for (const piece of [() => 65536, () => 1, (i: number) => (i * 7919) % 20000, () => stream.length]) {
      const s = read(stream, piece);
      expect([...s.files].sort()).toEqual(['backup-my.cnf', 'ibdata1', 'xtrabackup_binlog_info', 'xtrabackup_info']);
      expect(s.kept.get('xtrabackup_binlog_info')).toBe(binlogInfo);
      expect(s.kept.get('xtrabackup_info')).toBe('tool_version = 10.11.19-MariaDB\n');
      expect(s.kept.has('ibdata1')).toBe(false);
    }
  });
  it('refuses a stream cut inside a chunk, and one that is not an xbstream', () => {
    expect(() => read(stream.subarray(0, stream.length - 3), () => 4096)).toThrow(ParseError);
    expect(() => read(Buffer.from('this is not a stream at all'), () => 100)).toThrow(/magic/);
  });
});
