/**
 * One clone attempt against senders on loopback that are slow in each of the ways a real one
 * can be: not accepting the connection, silent before the first byte (its tool waits for a lock
 * or opens many tablespaces), silent mid-stream. The stream is a real xbstream (`mbstream -c`)
 * extracted by the real `mbstream -x`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type AddressInfo, type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type StreamTimeouts, cloneInto } from '../../../agent/init/clone-attempt.js';
import { CloneError } from '../../../agent/core/errors.js';
import { PLAIN_HTTP } from '../../../agent/core/tls.js';
import { extractCommand } from '../../../agent/stream/backup-tool.js';
import { STATUS_TRAILER, SUCCESS } from '../../../agent/stream/protocol.js';

const log = pino({ level: 'silent' });
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

/** Sends the stream and the trailer (Success unless told; null: none). */
function sendStream(res: ServerResponse, body = stream, trailer: string | null = SUCCESS): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', trailer: STATUS_TRAILER });
  res.write(body);
  if (trailer !== null) res.addTrailers({ [STATUS_TRAILER]: trailer });
  res.end();
}

async function attempt(port: number, timeouts: StreamTimeouts) {
  const staging = await mkdtemp(join(base, 'staging-'));
  const started = Date.now();
  const outcome = await cloneInto({ host: '127.0.0.1', port, token: null, transport: PLAIN_HTTP }, staging, extractCommand('mbstream', staging), log, new AbortController().signal, timeouts).then(
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
