/** zstd's byte counts, read from what it prints: verbatim stderr of this machine's zstd 1.5.4, 1.4's format, and a real run. */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { zstdCommand, zstdSummary } from '../../../agent/stream/backup-tool.js';

/** `zstd -1 -vv -c` of 351,926,592 bytes on stdin (zstd 1.5.4, Debian 12), stderr verbatim. */
const ZSTD_1_5_4 = `*** Zstandard CLI (64-bit) v1.5.4, by Yann Collet ***
--zstd=wlog=19,clog=13,hlog=14,slog=1,mml=7,tlen=0,strat=1
--format=.zst --no-sparse --block-size=0 --memory=134217728 --threads=1 --content-size
Using stdin for input 
Using stdout for output 
Decompression will require 524288 B of memory
/*stdin*\\            : 32.16%   (351926592 B => 113170429 B, /*stdout*\\) 
/*stdin*\\            : Completed in 1.55 sec  (cpu load : 127%)
`;

describe('zstdSummary', () => {
  it("reads 1.5's exact counts from its -vv report", () => {
    expect(zstdSummary(ZSTD_1_5_4)).toEqual({ inBytes: 351_926_592, outBytes: 113_170_429 });
    // The tail the child keeps: lines joined with ' | '.
    expect(zstdSummary(ZSTD_1_5_4.trim().split('\n').slice(-3).join(' | '))).toEqual({ inBytes: 351_926_592, outBytes: 113_170_429 });
  });

  it("reads 1.4's line, whose format (`%6llu => %6llu bytes`) pads small counts", () => {
    expect(zstdSummary('/*stdin*\\            : 25.00%   (  1000 =>    250 bytes, /*stdout*\\) ')).toEqual({ inBytes: 1000, outBytes: 250 });
  });

  it('is null without the line: a rounded report (`4.77 MiB => 1.36 MiB`), an error, nothing', () => {
    expect(zstdSummary('/*stdin*\\            : 28.58%   (  4.77 MiB =>   1.36 MiB, /*stdout*\\) ')).toBeNull();
    expect(zstdSummary('zstd: error 70 : Write error : cannot write block : Broken pipe')).toBeNull();
    expect(zstdSummary('')).toBeNull();
  });

  it("reads the real zstd's report of a run with zstdCommand's arguments", () => {
    const input = Buffer.concat([randomBytes(70_000), Buffer.alloc(130_001)]);
    const { command, args } = zstdCommand('zstd');
    const run = spawnSync(command, args, { input, maxBuffer: 1 << 24 });
    expect(run.status).toBe(0);
    expect(zstdSummary(run.stderr.toString())).toEqual({ inBytes: 200_001, outBytes: run.stdout.length });
  });
});
