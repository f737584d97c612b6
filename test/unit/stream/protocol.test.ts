import { createHash, timingSafeEqual } from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { SUCCESS, bearerToken, statusTrailer, tokensEqual } from '../../../agent/stream/protocol.js';

// The real comparison, watched: the contract is what it is given.
vi.mock('node:crypto', async (importOriginal) => {
  const crypto = await importOriginal<typeof import('node:crypto')>();
  return { ...crypto, timingSafeEqual: vi.fn(crypto.timingSafeEqual) };
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
