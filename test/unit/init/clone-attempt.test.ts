/**
 * One clone attempt against senders on loopback that are slow in each of the ways a real one
 * can be: not accepting the connection, silent before the first byte (its tool waits for a lock
 * or opens many tablespaces), silent mid-stream. The stream is a real xbstream (`mbstream -c`)
 * extracted by the real `mbstream -x`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type AddressInfo, type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants as zlib, zstdCompressSync } from 'node:zlib';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AUTO_ZSTD_BELOW_MB_S, type StreamTimeouts, cloneInto } from '../../../agent/init/clone-attempt.js';
import { CloneError } from '../../../agent/core/errors.js';
import { type AgentTransport, PLAIN_HTTP } from '../../../agent/core/tls.js';
import { type ToolCommand, extractCommand, unzstdCommand } from '../../../agent/stream/backup-tool.js';
import type { Compression } from '../../../agent/stream/compression.js';
import { ENCODINGS_HEADER, PROBE_PATH, STATUS_TRAILER, STREAM_UPGRADE, SUCCESS, UPGRADES_HEADER, statusChunk } from '../../../agent/stream/protocol.js';

const log = pino({ level: process.env.TEST_LOG ?? 'silent' });
/** The defaults of CLONE_CONNECT_TIMEOUT, CLONE_FIRST_BYTE_TIMEOUT and CLONE_IDLE_TIMEOUT. */
const DEFAULTS: StreamTimeouts = { connectMs: 10_000, firstByteMs: 1_800_000, idleMs: 600_000 };

let base: string;
let stream: Buffer;
/** A real xbstream of the named files (of those written in beforeAll). */
let xbstream: (members: string[]) => Buffer;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'mysql-agent-clone-attempt-'));
  const files = join(base, 'files');
  await mkdir(join(files, 'mysql'), { recursive: true });
  const names = ['mysql/db.opt', 'backup-my.cnf', 'xtrabackup_info', 'xtrabackup_checkpoints', 'mariadb_backup_info', 'mariadb_backup_checkpoints'];
  for (const f of names) await writeFile(join(files, f), `${f}\n`.repeat(1000));
  xbstream = (members) => execFileSync('mbstream', ['-c', ...members], { cwd: files });
  stream = xbstream(names.slice(0, 4));
});

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** A sender on 127.0.0.1 answering /backup with `handler`. */
async function sender(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as AddressInfo).port;
}

/** Sends the stream and the trailer (Success unless told; null: none); HEAD gets what a sender without the upgrade answers. */
function sendStream(res: ServerResponse, body = stream, trailer: string | null = SUCCESS): void {
  if (res.req.method === 'HEAD') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', trailer: STATUS_TRAILER });
  res.write(body);
  if (trailer !== null) res.addTrailers({ [STATUS_TRAILER]: trailer });
  res.end();
}

async function attempt(
  port: number,
  timeouts: StreamTimeouts,
  accept: Compression | 'auto' = 'none',
  maxRateMbS: number | null = null,
  transport: AgentTransport = PLAIN_HTTP,
  autoZstdBelowMbS?: number,
  unzstd: ToolCommand | null = null,
) {
  const staging = await mkdtemp(join(base, 'staging-'));
  const started = Date.now();
  const source = { host: '127.0.0.1', port, token: null, transport, accept, maxRateMbS, ...(autoZstdBelowMbS ? { autoZstdBelowMbS } : {}) };
  const outcome = await cloneInto(source, staging, extractCommand('mbstream', staging), log, new AbortController().signal, timeouts, unzstd).then(
    (result) => ({ result, error: null }),
    (error: unknown) => ({ result: null, error: error as Error }),
  );
  return { ...outcome, ms: Date.now() - started, files: await readdir(staging) };
}

describe('cloneInto and a slow sender', () => {
  it('clones from a sender silent for 12 s before anything, headers included, with the default timeouts', async () => {
    const port = await sender((_req, res) => {
      const timer = setTimeout(() => sendStream(res), 12_000);
      res.once('close', () => clearTimeout(timer));
    });
    const { result, error, ms, files } = await attempt(port, DEFAULTS);
    expect(error).toBeNull();
    expect(result!.bytes).toBe(stream.length);
    expect(ms).toBeGreaterThanOrEqual(12_000);
    expect(files.sort()).toEqual(['backup-my.cnf', 'mysql', 'xtrabackup_checkpoints', 'xtrabackup_info']);
  }, 30_000);

  it('gives up on a sender that sends its headers but no byte within the first-byte timeout, naming CLONE_FIRST_BYTE_TIMEOUT', async () => {
    const port = await sender((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.flushHeaders();
    });
    const { error, ms } = await attempt(port, { ...DEFAULTS, firstByteMs: 1000 });
    expect(error).toBeInstanceOf(CloneError);
    expect((error as CloneError).retryable).toBe(true);
    expect(error!.message).toMatch(/^peer 127\.0\.0\.1:\d+ sent no byte of the backup within 1 s of connecting \(CLONE_FIRST_BYTE_TIMEOUT\)/);
    expect(ms).toBeGreaterThanOrEqual(1000);
    expect(ms).toBeLessThan(3000);
  });

  it('gives up on a sender that sends nothing at all within the first-byte timeout', async () => {
    const port = await sender(() => {});
    const { error, ms } = await attempt(port, { ...DEFAULTS, firstByteMs: 1000 });
    expect(error!.message).toMatch(/sent no byte of the backup within 1 s of connecting \(CLONE_FIRST_BYTE_TIMEOUT\)/);
    expect(ms).toBeLessThan(3000);
  });

  it('gives up on a sender silent mid-stream for the idle timeout, naming CLONE_IDLE_TIMEOUT', async () => {
    const port = await sender((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(stream.subarray(0, 1000));
    });
    const { error, ms } = await attempt(port, { ...DEFAULTS, idleMs: 1000 });
    expect(error).toBeInstanceOf(CloneError);
    expect((error as CloneError).retryable).toBe(true);
    expect(error!.message).toMatch(/peer 127\.0\.0\.1:\d+ sent nothing for 1 s after 1000 bytes \(CLONE_IDLE_TIMEOUT\)/);
    expect(ms).toBeLessThan(3000);
  });

  it('gives up on a peer that does not accept the connection within the connect timeout, naming CLONE_CONNECT_TIMEOUT', async () => {
    // A listener that never accepts, with its queue full: the kernel drops further SYNs, as a
    // peer behind a dead node or a dropping firewall does. Perl is part of every Debian.
    const listener: ChildProcess = spawn('perl', [
      '-MIO::Socket::INET',
      '-e',
      '$s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1, Proto => "tcp") or die; $| = 1; print $s->sockport, "\\n"; sleep 60',
    ]);
    cleanups.push(() => listener.kill('SIGKILL'));
    const port = await new Promise<number>((resolve) => listener.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
    const fillers: Socket[] = [];
    cleanups.push(() => fillers.forEach((s) => s.destroy()));
    for (let i = 0; i < 4; i++) fillers.push(connect(port, '127.0.0.1').on('error', () => {}));
    const { error, ms } = await attempt(port, { ...DEFAULTS, connectMs: 1000 });
    expect(error).toBeInstanceOf(CloneError);
    expect((error as CloneError).retryable).toBe(true);
    expect(error!.message).toMatch(/^peer 127\.0\.0\.1:\d+ did not accept a connection within 1 s \(CLONE_CONNECT_TIMEOUT\)/);
    expect(ms).toBeLessThan(3000);
  });
});

describe('cloneInto and a faulty sender: each switch of the fake donor', () => {
  it('fails a stream that ends cleanly with a Success trailer but lacks the closing files, naming them', async () => {
    const port = await sender((_req, res) => sendStream(res, xbstream(['mysql/db.opt', 'backup-my.cnf'])));
    const { error, result } = await attempt(port, DEFAULTS);
    expect(result).toBeNull();
    expect(error).toBeInstanceOf(CloneError);
    expect((error as CloneError).retryable).toBe(true);
    expect(error!.message).toMatch(
      /^stream from 127\.0\.0\.1:\d+ is incomplete: no xtrabackup_info or mariadb_backup_info, xtrabackup_checkpoints or mariadb_backup_checkpoints after \d+ bytes$/,
    );
  });

  it('fails a stream without backup-my.cnf alone, and takes the MariaDB 11.1+ names of the other two', async () => {
    const lacking = await sender((_req, res) => sendStream(res, xbstream(['mysql/db.opt', 'xtrabackup_info', 'xtrabackup_checkpoints'])));
    expect((await attempt(lacking, DEFAULTS)).error!.message).toMatch(/is incomplete: no backup-my\.cnf after/);
    const renamed = xbstream(['mysql/db.opt', 'backup-my.cnf', 'mariadb_backup_info', 'mariadb_backup_checkpoints']);
    const port = await sender((_req, res) => sendStream(res, renamed));
    const { error, result } = await attempt(port, DEFAULTS);
    expect(error).toBeNull();
    expect(result!.bytes).toBe(renamed.length);
  });

  it('truncate: a stream cut at a chunk boundary, with no trailer, fails as stopped before finishing (mbstream itself exits 0)', async () => {
    const whole = xbstream(['mysql/db.opt', 'backup-my.cnf']);
    const port = await sender((_req, res) => sendStream(res, whole, null));
    const { error } = await attempt(port, DEFAULTS);
    expect((error as CloneError).retryable).toBe(true);
    expect(error!.message).toMatch(new RegExp(`ended after ${whole.length} bytes without a status trailer: the sender stopped before finishing$`));
  });

  it('truncate: a connection dropped mid-chunk fails as a broken stream, retryable', async () => {
    const port = await sender((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(stream.subarray(0, 3000), () => res.socket!.destroy());
    });
    const { error } = await attempt(port, DEFAULTS);
    expect((error as CloneError).retryable).toBe(true);
    // How many of the 3000 bytes were read before the close is up to the kernel and the event loop.
    expect(error!.message).toMatch(/^stream from 127\.0\.0\.1:\d+ broke after \d+ bytes/);
  });

  it("error: the sender's Failed trailer fails the clone with the sender's reason, even when every file arrived", async () => {
    const port = await sender((_req, res) => sendStream(res, stream, 'Failed: mariadb-backup exited with code 1'));
    const { error } = await attempt(port, DEFAULTS);
    expect((error as CloneError).retryable).toBe(true);
    expect(error!.message).toMatch(new RegExp(`^sender 127\\.0\\.0\\.1:\\d+ reported the backup failed after ${stream.length} bytes \\(Failed: mariadb-backup exited with code 1\\)$`));
  });

  it('error: 429 is retryable after the Retry-After it names; 401 (the token) and 403 (the client certificate) are not retried and name the setting', async () => {
    const busy = await sender((_req, res) => res.writeHead(429, { 'retry-after': '7' }).end());
    const busyError = (await attempt(busy, DEFAULTS)).error as CloneError & { retryAfterMs?: number };
    expect(busyError.message).toMatch(/is busy serving another backup \(HTTP 429\)$/);
    expect(busyError.retryable).toBe(true);
    expect(busyError.retryAfterMs).toBe(7000);
    const named = { 401: /refused our token \(HTTP 401\): BACKUP_TOKEN must be the same secret on every pod$/, 403: /requires a client certificate of its CA \(HTTP 403, TLS_CLIENT_AUTH=require\): set TLS_DIR/ };
    for (const [status, message] of Object.entries(named)) {
      const port = await sender((_req, res) => res.writeHead(Number(status)).end());
      const err = (await attempt(port, DEFAULTS)).error as CloneError;
      expect(err.retryable).toBe(false);
      expect(err.message).toMatch(message);
    }
    const broken = await sender((_req, res) => res.writeHead(500).end());
    const brokenError = (await attempt(broken, DEFAULTS)).error as CloneError & { retryAfterMs?: number };
    expect(brokenError.message).toMatch(/answered HTTP 500$/);
    expect([brokenError.retryable, brokenError.retryAfterMs]).toEqual([true, undefined]);
  });
});

/**
 * What the stream tool this process runs now reads: `tcp` (a connection's socket, handed over) or
 * `local` (the pipe Node makes for a child's stdin: a socketpair, so told apart by /proc/net/tcp).
 */
async function streamToolStdin(): Promise<'tcp' | 'local' | null> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const m = /^\d+ \((.*)\) \S (\d+)/.exec(stat);
    if (m?.[1] !== 'mbstream' || Number(m[2]) !== process.pid) continue;
    const link = await readlink(`/proc/${pid}/fd/0`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    const tcp = inode !== undefined && (await readFile('/proc/net/tcp', 'utf8')).split('\n').some((l) => l.trim().split(/\s+/)[9] === inode);
    return tcp ? 'tcp' : 'local';
  }
  return null;
}

const STARTED = '2026-12-01T12:00:00.000Z';

/**
 * A sender of this version: HEAD offers the upgrade; an upgraded GET gets `101`, the stream in
 * two parts (`between` runs in the pause) and `tail` (the verdict chunk by default). A plain GET
 * gets the chunked body and trailer, as every sender answers.
 */
async function upgradingSender(opts: {
  between?: () => Promise<void>;
  body?: Buffer;
  tail?: Buffer;
  headExtra?: Buffer;
  /** Changes the compressed bytes as they go out (a stream corrupted in flight). */
  corrupt?: (wire: Buffer) => Buffer;
  /** What /status says of the last backup's failure, and when that one started (default: this one). */
  lastFailure?: string;
  lastStartedAt?: string;
  /** Whether HEAD offers zstd (X-Backup-Encodings), as this version does (default). */
  offersZstd?: boolean;
  /** The rate GET /backup/probe is served at, MB/s (default: as fast as the socket takes it). */
  probeMbS?: number;
  /** Milliseconds of busy loop before each probe chunk: the thread runs instead of waiting. */
  busyMs?: number;
}): Promise<{ port: number; upgraded: () => number; encodings: () => string[]; probes: () => number }> {
  const encodings: string[] = [];
  const body = opts.body ?? stream;
  let upgraded = 0;
  let probes = 0;
  const server: Server = createServer((req, res) => {
    if (req.method === 'HEAD') {
      res.writeHead(200, { [UPGRADES_HEADER]: STREAM_UPGRADE, ...(opts.offersZstd === false ? {} : { [ENCODINGS_HEADER]: 'zstd' }) });
      return res.end();
    }
    if (req.url?.startsWith(PROBE_PATH)) {
      probes++;
      const bytes = Number(new URL(req.url, 'http://sender').searchParams.get('bytes'));
      res.writeHead(200, { 'content-length': String(bytes) });
      if (!opts.probeMbS) return res.end(Buffer.alloc(bytes));
      const chunk = 256 * 1024;
      let sent = 0;
      const timer = setInterval(() => {
        for (const until = performance.now() + (opts.busyMs ?? 0); performance.now() < until; );
        const n = Math.min(chunk, bytes - sent);
        sent += n;
        res.write(Buffer.alloc(n));
        if (sent >= bytes) {
          clearInterval(timer);
          res.end();
        }
      }, (chunk / (opts.probeMbS * 1e6)) * 1000);
      res.once('close', () => clearInterval(timer));
      return;
    }
    if (req.url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ last_backup: opts.lastFailure ? { started_at: opts.lastStartedAt ?? STARTED, failure: opts.lastFailure } : null }));
    }
    sendStream(res, body);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    upgraded++;
    socket.on('error', () => {});
    void (async () => {
      expect(req.headers.upgrade).toBe(STREAM_UPGRADE);
      const zstd = req.headers['accept-encoding'] === 'zstd';
      encodings.push(zstd ? 'zstd' : 'none');
      const head = `HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${STREAM_UPGRADE}\r\nx-backup-started-at: ${STARTED}\r\n${zstd ? 'content-encoding: zstd\r\n' : ''}\r\n`;
      socket.write(Buffer.concat([Buffer.from(head), opts.headExtra ?? Buffer.alloc(0)]));
      await delay(100);
      const tail = opts.tail ?? statusChunk(null, body.length);
      if (zstd) {
        // As the sidecar compresses: level 1 with the frame checksum.
        const wire = zstdCompressSync(Buffer.concat([body, tail]), { params: { [zlib.ZSTD_c_compressionLevel]: 1, [zlib.ZSTD_c_checksumFlag]: 1 } });
        return socket.end(opts.corrupt ? opts.corrupt(wire) : wire);
      }
      const half = Math.floor(body.length / 2);
      socket.write(body.subarray(0, half));
      await opts.between?.();
      socket.end(Buffer.concat([body.subarray(half), tail]));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as AddressInfo).port, upgraded: () => upgraded, encodings: () => encodings, probes: () => probes };
}

describe('cloneInto and a sender offering the bare-xbstream upgrade', () => {
  it('hands the socket itself to the stream tool (no JavaScript on the data path) and takes the byte count from the verdict', async () => {
    let stdin: 'tcp' | 'local' | null = null;
    const { port, upgraded } = await upgradingSender({
      between: async () => {
        for (let i = 0; i < 50 && stdin === null; i++) {
          stdin = await streamToolStdin();
          if (stdin === null) await delay(20);
        }
      },
    });
    const { result, error, files } = await attempt(port, DEFAULTS);
    expect(error).toBeNull();
    expect(upgraded()).toBe(1);
    expect(stdin).toBe('tcp');
    expect(result!.bytes).toBe(stream.length);
    // The verdict's file is read and removed: nothing of the protocol is left in the clone.
    expect(files.sort()).toEqual(['backup-my.cnf', 'mysql', 'xtrabackup_checkpoints', 'xtrabackup_info']);
  });

  it('pipes the body itself when the answer came with body bytes after the head', async () => {
    const { port } = await upgradingSender({ headExtra: stream.subarray(0, 100), body: stream.subarray(100), tail: statusChunk(null, stream.length) });
    const { result, error } = await attempt(port, DEFAULTS);
    expect(error).toBeNull();
    expect(result!.bytes).toBe(stream.length);
  });

  it('refuses a stream whose sender reported a failure in the verdict', async () => {
    const { port } = await upgradingSender({ tail: statusChunk('mariadb-backup exited 1', 0) });
    const { error } = await attempt(port, DEFAULTS);
    expect(error).toBeInstanceOf(CloneError);
    expect(error!.message).toMatch(/reported the backup failed after \d+ bytes \(Failed: mariadb-backup exited 1\)/);
  });

  it('refuses a stream that ends without the verdict (the sender died between two chunks)', async () => {
    const { port } = await upgradingSender({ tail: Buffer.alloc(0) });
    const { error } = await attempt(port, DEFAULTS);
    expect(error).toBeInstanceOf(CloneError);
    expect((error as CloneError).retryable).toBe(true);
    expect(error!.message).toMatch(/ended after \d+ bytes without a status trailer \(mysql-agent-backup-status\)/);
  });

  it('names the sender\'s failure from its /status when its tool was killed mid-chunk (the stream tool refuses the cut before the verdict)', async () => {
    const cut = stream.subarray(0, Math.floor(stream.length / 2) + 7);
    const { port } = await upgradingSender({ body: cut, tail: statusChunk('mariadb-backup was killed by SIGKILL', cut.length), lastFailure: 'mariadb-backup was killed by SIGKILL' });
    const { error } = await attempt(port, DEFAULTS);
    expect(error).toBeInstanceOf(CloneError);
    expect((error as CloneError).retryable).toBe(true);
    expect(error!.message).toMatch(/reported the backup failed after \d+ bytes \(Failed: mariadb-backup was killed by SIGKILL\)/);
  });

  it("a stream that ends whole at a chunk's end but without its verdict: the sender's own word from /status, not the missing trailer", async () => {
    const { port } = await upgradingSender({ tail: Buffer.alloc(0), lastFailure: 'mariadb-backup exited 1: FTWRL timed out' });
    const { error } = await attempt(port, DEFAULTS);
    expect(error).toBeInstanceOf(CloneError);
    expect((error as CloneError).retryable).toBe(true);
    expect(error!.message).toMatch(/^sender .* reported the backup failed after \d+ bytes \(Failed: mariadb-backup exited 1: FTWRL timed out\)$/);
  });

  it('does not take an earlier backup\'s failure in /status for this one\'s', async () => {
    const cut = stream.subarray(0, Math.floor(stream.length / 2) + 7);
    const { port } = await upgradingSender({ body: cut, tail: Buffer.alloc(0), lastFailure: 'an older failure', lastStartedAt: '2026-12-01T11:59:00.000Z' });
    const { error } = await attempt(port, DEFAULTS);
    expect(error!.message).not.toMatch(/an older failure/);
    expect(error!.message).toMatch(/extracting the stream from .* failed|broke after/);
  });

  it('refuses a corrupt stream (one payload byte flipped) as the stream tool does', async () => {
    const corrupt = Buffer.from(stream);
    corrupt[corrupt.length - 200]! ^= 0xff;
    const { port } = await upgradingSender({ body: corrupt });
    const { error } = await attempt(port, DEFAULTS);
    expect(error).toBeInstanceOf(CloneError);
    expect(error!.message).toMatch(/extracting the stream from .* failed/);
  });
});

/**
 * `zstd -d` behind a wrapper that first notes what its stdin is: a socket when the clone's
 * connection was handed to it, with no byte of the stream read by the agent.
 */
async function notingUnzstd(): Promise<{ command: ToolCommand; stdin: () => Promise<string> }> {
  const dir = await mkdtemp(join(base, 'unzstd-'));
  const script = join(dir, 'zstd');
  await writeFile(script, `#!/bin/sh\nreadlink /proc/$$/fd/0 > '${dir}/stdin'\nexec zstd "$@"\n`, { mode: 0o755 });
  return { command: unzstdCommand(script), stdin: () => readFile(join(dir, 'stdin'), 'utf8') };
}

describe.each([
  ['the agent decompressing (no zstd installed)', false],
  ['a zstd child decompressing', true],
] as const)('cloneInto asking for zstd on the wire (CLONE_COMPRESSION=zstd), %s', (_how, child) => {
  const unzstd = async () => (child ? (await notingUnzstd()).command : null);

  it('gets the stream compressed when it asks, decompresses it into the tool, and counts the xbstream bytes', async () => {
    const { port, encodings } = await upgradingSender({});
    const noting = child ? await notingUnzstd() : null;
    const { result, error, files } = await attempt(port, DEFAULTS, 'zstd', null, PLAIN_HTTP, undefined, noting?.command ?? null);
    // The connection itself was zstd's stdin: the agent read none of it.
    if (noting) expect((await noting.stdin()).trim()).toMatch(/^socket:\[\d+\]$/);
    expect(error).toBeNull();
    expect(encodings()).toEqual(['zstd']);
    expect(result!.bytes).toBe(stream.length);
    expect(files).toContain('xtrabackup_checkpoints');
    expect(files).not.toContain('mysql-agent-backup-status');
  });

  it('does not ask for it with none: the raw stream, socket handed over', async () => {
    const { port, encodings } = await upgradingSender({});
    const { error } = await attempt(port, DEFAULTS, 'none', null, PLAIN_HTTP, undefined, await unzstd());
    expect(error).toBeNull();
    expect(encodings()).toEqual(['none']);
  });

  it('refuses a compressed stream corrupted in flight, as a corrupt raw one, and leaves the attempt retryable', async () => {
    const { port } = await upgradingSender({
      corrupt: (wire) => {
        const b = Buffer.from(wire);
        b[Math.floor(b.length / 2)]! ^= 0xff;
        return b;
      },
    });
    const { error } = await attempt(port, DEFAULTS, 'zstd', null, PLAIN_HTTP, undefined, await unzstd());
    expect(error).toBeInstanceOf(CloneError);
    expect((error as CloneError).retryable).toBe(true);
    expect(error!.message).toMatch(/stream from .* broke after \d+ bytes|extracting the stream from .* failed/);
  });
});

describe('cloneInto with CLONE_COMPRESSION=auto', () => {
  it('times the link and takes the raw stream when it is faster than CLONE_COMPRESSION_AUTO_BELOW (the socket handed over)', async () => {
    // A link of 10 MB/s that the receiver waits on, against a bound of 5.
    const { port, encodings, probes } = await upgradingSender({ probeMbS: 10 });
    const { error } = await attempt(port, DEFAULTS, 'auto', null, PLAIN_HTTP, 5);
    expect(error).toBeNull();
    expect(probes()).toBe(1);
    expect(encodings()).toEqual(['none']);
  });

  it(`asks for zstd when the link times below ${AUTO_ZSTD_BELOW_MB_S} MB/s`, async () => {
    // Slow enough that this process (the fake sender's too) waits for bytes most of the time, even on a loaded machine.
    const { port, encodings, probes } = await upgradingSender({ probeMbS: 10 });
    const { result, error } = await attempt(port, DEFAULTS, 'auto');
    expect(error).toBeNull();
    expect(probes()).toBe(1);
    expect(encodings()).toEqual(['zstd']);
    expect(result!.bytes).toBe(stream.length);
  });

  it('asks nothing of a sender that does not offer zstd, and takes the raw stream', async () => {
    const { port, encodings, probes } = await upgradingSender({ offersZstd: false });
    const { error } = await attempt(port, DEFAULTS, 'auto');
    expect(error).toBeNull();
    expect(probes()).toBe(0);
    expect(encodings()).toEqual(['none']);
  });

  it('with zstd or none set, never times the link', async () => {
    for (const accept of ['zstd', 'none'] as const) {
      const { port, probes } = await upgradingSender({ probeMbS: 40 });
      expect((await attempt(port, DEFAULTS, accept)).error).toBeNull();
      expect(probes()).toBe(0);
    }
  });
});

describe('CLONE_COMPRESSION=auto on a receiver short of CPU', () => {
  it('takes the raw stream when it was busy most of the timing (it timed itself, not the link)', async () => {
    // The fake sender writes the probe in 64 KB pieces from this same thread, and a busy loop
    // between them keeps the thread running: slow bytes, but no waiting for them.
    const { port, encodings, probes } = await upgradingSender({ probeMbS: 20, busyMs: 10 });
    const { error } = await attempt(port, DEFAULTS, 'auto');
    expect(error).toBeNull();
    expect(probes()).toBe(1);
    expect(encodings()).toEqual(['none']);
  });

  it('asks for zstd all the same when a zstd child would decompress (this thread does none of it)', async () => {
    const { port, encodings, probes } = await upgradingSender({ probeMbS: 20, busyMs: 10 });
    const noting = await notingUnzstd();
    const { result, error } = await attempt(port, DEFAULTS, 'auto', null, PLAIN_HTTP, undefined, noting.command);
    expect(error).toBeNull();
    expect(probes()).toBe(1);
    expect(encodings()).toEqual(['zstd']);
    expect((await noting.stdin()).trim()).toMatch(/^socket:\[\d+\]$/);
    expect(result!.bytes).toBe(stream.length);
  });
});

describe('cloneInto with CLONE_MAX_RATE', () => {
  it('reads the upgraded stream through the cap (not by the tool off the socket) at the rate', async () => {
    let stdin: 'tcp' | 'local' | null = null;
    const { port } = await upgradingSender({ between: async () => void (stdin = await streamToolStdin()) });
    const rate = 0.05;
    const { result, error, ms } = await attempt(port, DEFAULTS, 'none', rate);
    expect(error).toBeNull();
    expect(result!.bytes).toBe(stream.length);
    expect(stdin).toBe('local');
    // The first chunk goes at once, the rest at the rate.
    expect(ms).toBeGreaterThanOrEqual(((stream.length - 64 * 1024) / (rate * 1e6)) * 1000 * 0.9);
  });
});

describe('cloneInto and an upgrade offered but not answered (a proxy passing headers, not upgrades)', () => {
  it('falls back to the plain GET in the same attempt', async () => {
    let gets = 0;
    const port = await sender((req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, { [UPGRADES_HEADER]: STREAM_UPGRADE });
        return res.end();
      }
      gets++;
      sendStream(res);
    });
    const { result, error } = await attempt(port, DEFAULTS);
    expect(error).toBeNull();
    expect(result!.bytes).toBe(stream.length);
    expect(gets).toBe(2);
  });

  it('falls back to the plain GET when the upgraded request gets no answer at all (a proxy that drops the 101)', async () => {
    const server: Server = createServer((req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, { [UPGRADES_HEADER]: STREAM_UPGRADE });
        return res.end();
      }
      sendStream(res);
    });
    // Upgraded sockets leave the server's books: closeAllConnections does not end them.
    const silent: Socket[] = [];
    server.on('upgrade', (_req, socket: Socket) => silent.push(socket.on('error', () => {})));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      silent.forEach((s) => s.destroy());
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    });
    const { result, error, ms } = await attempt((server.address() as AddressInfo).port, DEFAULTS);
    expect(error).toBeNull();
    expect(result!.bytes).toBe(stream.length);
    expect(ms).toBeGreaterThanOrEqual(5000);
    expect(ms).toBeLessThan(8000);
  });
});

describe('cloneInto over TLS (TLS_DIR)', () => {
  /**
   * An https-scheme transport speaking plain TCP underneath, whose reads reach the callback in
   * 100-byte records whether or not one asked to pause, as a TLS socket hands over every record
   * it decrypted from one read: what is asked and how the records are taken are under test.
   */
  const tlsLike: AgentTransport = {
    scheme: 'https',
    request: (options, onResponse) => PLAIN_HTTP.request(options, onResponse),
    connect: (options) =>
      PLAIN_HTTP.connect({
        ...options,
        onread: {
          buffer: Buffer.alloc(64 * 1024),
          callback: (n, buf) => {
            let more = true;
            for (let at = 0; at < n; at += 100) more = options.onread.callback(Math.min(100, n - at), Buffer.from(buf.subarray(at, Math.min(n, at + 100)))) !== false && more;
            return more;
          },
        },
      }),
  };

  it.each(['none', 'zstd'] as const)('takes the upgraded stream (%s) through here, never handing the socket over, every record after the head kept', async (accept) => {
    let stdin: 'tcp' | 'local' | null = null;
    // Raw: the head and the first 1000 bytes in one write, so records past the head come in the same read.
    const early = accept === 'none' ? { headExtra: stream.subarray(0, 1000), body: stream.subarray(1000), tail: statusChunk(null, stream.length) } : {};
    const { port, upgraded, encodings } = await upgradingSender({ ...early, between: async () => void (stdin = await streamToolStdin()) });
    const { result, error } = await attempt(port, DEFAULTS, accept, null, tlsLike);
    expect(error).toBeNull();
    expect(result!.bytes).toBe(stream.length);
    expect(upgraded()).toBe(1);
    expect(encodings()).toEqual([accept]);
    if (accept === 'none') expect(stdin).toBe('local');
  });
});
