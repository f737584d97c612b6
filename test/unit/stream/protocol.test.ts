import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { parseReadBytes } from '../../../agent/stream/meter.js';
import {
  MAX_HEAD_BYTES,
  STATUS_FILE,
  SUCCESS,
  bearerToken,
  parseResponseHead,
  parseStatusFile,
  statusChunk,
  statusTrailer,
  tokensEqual,
} from '../../../agent/stream/protocol.js';
import { timingSafeEqual } from '../../../agent/core/builtins.js';

// The real comparison, watched: the contract is what it is given.
vi.mock('../../../agent/core/builtins.js', async (importOriginal) => {
  const builtins = await importOriginal<typeof import('../../../agent/core/builtins.js')>();
  return { ...builtins, timingSafeEqual: vi.fn(builtins.timingSafeEqual) };
});
const sha256 = (s: string) => createHash('sha256').update(s).digest();

const TOKEN = '0123456789abcdef0123456789abcdef';

describe('bearerToken', () => {
  it('reads the token of a Bearer header', () => {
    expect(bearerToken(`Bearer ${TOKEN}`)).toBe(TOKEN);
  });

  it('reads the scheme name case-insensitively', () => {
    expect(bearerToken(`bearer ${TOKEN}`)).toBe(TOKEN);
    expect(bearerToken(`BEARER ${TOKEN}`)).toBe(TOKEN);
  });

  it.each([
    ['a missing header', undefined],
    ['an empty header', ''],
    ['another scheme', 'Basic dXNlcjpwYXNz'],
    ['an empty token', 'Bearer '],
    ['no token at all', 'Bearer'],
    ['a token with a space', 'Bearer abc def'],
    ['two spaces before the token', `Bearer  ${TOKEN}`],
    ['a trailing newline', `Bearer ${TOKEN}\n`],
    ['another scheme ending in "bearer"', `NotBearer ${TOKEN}`],
    ['a leading space', ` Bearer ${TOKEN}`],
  ])('returns null for %s', (_what, header) => {
    expect(bearerToken(header)).toBeNull();
  });
});

describe('tokensEqual', () => {
  it('is true for the same token', () => {
    expect(tokensEqual(TOKEN, `${TOKEN}`)).toBe(true);
  });

  it('is false for a token that differs in one character', () => {
    expect(tokensEqual(TOKEN, `${TOKEN.slice(0, -1)}0`)).toBe(false);
  });

  it('is false (and does not throw) for tokens of different lengths', () => {
    expect(tokensEqual(TOKEN, TOKEN.slice(0, 16))).toBe(false);
    expect(tokensEqual('', TOKEN)).toBe(false);
    expect(tokensEqual(`${TOKEN}x`, TOKEN)).toBe(false);
  });

  describe('in constant time', () => {
    beforeEach(() => {
      vi.mocked(timingSafeEqual).mockClear();
    });

    it.each([
      ['the same token', TOKEN, TOKEN],
      ['a one-character difference at the end', `${TOKEN.slice(0, -1)}0`, TOKEN],
      ['a shorter token', TOKEN.slice(0, 3), TOKEN],
      ['an empty token', '', TOKEN],
      ['a much longer token', TOKEN.repeat(40), TOKEN],
    ])('compares the SHA-256 digests once with timingSafeEqual, never the tokens: %s', (_what, given, expected) => {
      const equal = tokensEqual(given, expected);
      expect(equal).toBe(given === expected);
      expect(timingSafeEqual).toHaveBeenCalledTimes(1);
      const [a, b] = vi.mocked(timingSafeEqual).mock.calls[0]! as [Buffer, Buffer];
      // 32 bytes whatever the lengths: nothing about the given token's length reaches the comparison.
      expect([a.length, b.length]).toEqual([32, 32]);
      expect(Buffer.from(a).equals(sha256(given))).toBe(true);
      expect(Buffer.from(b).equals(sha256(expected))).toBe(true);
    });
  });
});

describe('statusTrailer', () => {
  it('is Success for a finished backup', () => {
    expect(statusTrailer(null)).toBe(SUCCESS);
    expect(SUCCESS).toBe('Success');
  });

  it('is Failed: <why> otherwise', () => {
    expect(statusTrailer('mariadb-backup exited with status 1')).toBe('Failed: mariadb-backup exited with status 1');
  });

  it('replaces newlines, control characters and non-ASCII by spaces', () => {
    const trailer = statusTrailer('line1\r\nline2\tdéjà vu \u0000 ✓');
    expect(trailer).toBe('Failed: line1  line2 d j  vu    ');
    expect(trailer).toMatch(/^[\x20-\x7e]+$/);
  });

  it('keeps at most 200 characters of the reason', () => {
    const trailer = statusTrailer('x'.repeat(1000));
    expect(trailer).toBe(`Failed: ${'x'.repeat(200)}`);
  });
});

describe('statusChunk (the verdict as the stream\'s last file)', () => {
  const extract = (bytes: Buffer) => {
    const dir = mkdtempSync(join(tmpdir(), 'mysql-agent-status-chunk-'));
    try {
      const r = spawnSync('mbstream', ['-x', '-C', dir], { input: bytes });
      return { code: r.status, stderr: String(r.stderr), text: r.status === 0 ? readFileSync(join(dir, STATUS_FILE), 'utf8') : null };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('is extracted by the real mbstream into STATUS_FILE, which parses back to the verdict and the byte count', () => {
    const ok = extract(statusChunk(null, 1099687667));
    expect(ok.code).toBe(0);
    expect(parseStatusFile(ok.text!)).toEqual({ status: SUCCESS, bytes: 1099687667 });
    const failed = extract(statusChunk('mariadb-backup exited 1: Access denied\n', 5));
    expect(parseStatusFile(failed.text!)).toEqual({ status: 'Failed: mariadb-backup exited 1: Access denied', bytes: null });
  });

  it('reads Success only as the whole line: anything before or after it is not a success', () => {
    expect(parseStatusFile('Success 42\n')).toEqual({ status: SUCCESS, bytes: 42 });
    for (const text of ['xSuccess 42', 'Success 42 more', 'Success 42x', 'Success', 'Success -1', 'Failed: Success 42']) {
      expect(parseStatusFile(text), text).toEqual({ status: text, bytes: null });
    }
  });

  it('carries a CRC-32 that mbstream checks: a flipped payload byte fails the extraction', () => {
    const chunk = statusChunk(null, 42);
    chunk[chunk.indexOf('Success')]! ^= 0x01;
    const r = extract(chunk);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/checksum/i);
  });
});

describe('parseResponseHead', () => {
  it('reads the status, the headers (lower-cased) and the head length, leaving the body', () => {
    const b = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: mysql-agent-xbstream\r\nX-Backup-Estimated-Bytes: 12\r\n\r\nXBSTCK01');
    const head = parseResponseHead(b)!;
    expect(head.status).toBe(101);
    expect(head.headers).toEqual({ upgrade: 'mysql-agent-xbstream', 'x-backup-estimated-bytes': '12' });
    expect(b.subarray(head.length).toString()).toBe('XBSTCK01');
  });

  it('waits for the rest of an incomplete head and refuses garbage and endless heads', () => {
    expect(parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: x'))).toBeNull();
    expect(() => parseResponseHead(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'))).toThrow(/not an HTTP response/);
    expect(() => parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nno colon here\r\n\r\n'))).toThrow(/malformed header line/);
    expect(() => parseResponseHead(Buffer.alloc(MAX_HEAD_BYTES + 1, 'a'))).toThrow(/longer than/);
  });
});

describe('parseReadBytes', () => {
  it('reads rchar of /proc/PID/io', () => {
    expect(parseReadBytes('rchar: 1099700000\nwchar: 17\nsyscr: 3\n')).toBe(1099700000);
    expect(parseReadBytes('wchar: 17\n')).toBeNull();
  });
});
