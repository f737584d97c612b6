/**
 * The sidecar's HTTP surface through fastify.inject, with the real BackupService running a real
 * child: the backup tool is a shell script standing in for mariadb-backup (it prints a body and
 * exits), so every spawn is counted in-process by a spy on the spawner, not by polling `pgrep`
 * for a tool that may live a few milliseconds.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { request } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { BackupService } from '../../../agent/sidecar/backup.js';
import { type StatusSource, buildHttpServer } from '../../../agent/sidecar/http-server.js';
import { spawnOwned } from '../../../agent/stream/child.js';
import { STREAM_UPGRADE } from '../../../agent/stream/protocol.js';
import { estimateBackupBytes } from '../../../agent/stream/sizes.js';
import { running } from '../../rig/helpers.js';

vi.mock('../../../agent/stream/child.js', async (importOriginal) => {
  const child = await importOriginal<typeof import('../../../agent/stream/child.js')>();
  return { ...child, spawnOwned: vi.fn(child.spawnOwned) };
});

const TOKEN = 'the-right-token-0123456789';
const BODY = 'xbstream-bytes-stand-in\n';

let base: string;
let tool: string;
let slowTool: string;
let failingTool: string;
let deafTool: string;
let bigTool: string;
let big: Buffer;
let dataDir: string;
let logs: string[];
let refusal: string | null;

/** A stand-in for the backup tool: a shell script, run as the real child it would be. */
async function script(name: string, body: string): Promise<string> {
  const path = join(base, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

function app(token: string | null = TOKEN, backupTool = tool, zstd = '', maxRateMbS: number | null = null) {
  const log = pino({ level: 'debug' }, new Writable({ write: (chunk, _enc, done) => (logs.push(String(chunk)), done()) }));
  const status: StatusSource = {
    readiness: async () => ({ ready: refusal === null, reason: refusal }),
    status: async () => ({ role: 'primary', ready: refusal === null }),
    fresh: async () => {},
    backupRefusal: () => refusal,
  };
  const backups = new BackupService(
    { tools: { backup: backupTool, extraArgs: [], zstd }, mysql: { host: '127.0.0.1', port: 3306, user: 'agent', password: 'agent-secret' }, dataDir },
    log,
    new AbortController().signal,
  );
  return { backups, server: buildHttpServer({ idleTimeoutMs: 10_000, token, backups, status, log, maxRateMbS }) };
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'mysql-agent-http-'));
  dataDir = join(base, 'data');
  await mkdir(join(dataDir, 'shop'), { recursive: true });
  await writeFile(join(dataDir, 'shop', 'items.ibd'), Buffer.alloc(123_456));
  await writeFile(join(dataDir, 'ibdata1'), Buffer.alloc(1000));
  tool = await script('backup-tool', `printf '${BODY.trimEnd()}\\n'`);
  // Holds the slot for a second.
  slowTool = await script('slow-backup-tool', `sleep 1\nprintf '${BODY.trimEnd()}\\n'`);
  // As mariadb-backup: SIGTERM ignored (an ignored signal stays ignored across exec, so sleep too).
  deafTool = await script('deaf-backup-tool', `trap '' TERM\nsleep 30`);
  // 300 kB, half of it incompressible: several pipe reads and zstd blocks.
  big = Buffer.concat([randomBytes(150_000), Buffer.alloc(150_000, 'x')]);
  await writeFile(join(base, 'big.xb'), big);
  bigTool = await script('big-backup-tool', `cat '${join(base, 'big.xb')}'`);
  failingTool = await script('failing-backup-tool', 'printf partial\necho "InnoDB: Error: log block corrupt" >&2\nexit 1');
});

beforeEach(() => {
  logs = [];
  refusal = null;
  vi.mocked(spawnOwned).mockClear();
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('GET /backup and the token', () => {
  it('answers 401 to 200 requests with missing, wrong or non-Bearer tokens, some concurrent, spawning nothing and logging no token', async () => {
    const { server, backups } = app();
    const wrong = Array.from({ length: 200 }, (_, i) => `wrong-token-${i}-${'x'.repeat(i % 20)}`);
    for (let batch = 0; batch < 4; batch++) {
      const replies = await Promise.all(
        wrong.slice(batch * 50, batch * 50 + 50).map((token, i) => {
          const headers: Record<string, string> = i % 5 === 0 ? {} : { authorization: i % 7 === 0 ? `Basic ${token}` : `Bearer ${token}` };
          return server.inject({ method: 'GET', url: '/backup', headers });
        }),
      );
      for (const r of replies) {
        expect(r.statusCode).toBe(401);
        expect(r.headers['www-authenticate']).toBe('Bearer');
      }
    }
    // A prefix of the right token and the right one with a character more are wrong too.
    for (const token of [TOKEN.slice(0, -1), `${TOKEN}x`]) expect((await server.inject({ url: '/backup', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
    expect(spawnOwned).not.toHaveBeenCalled();
    expect(backups.inProgress).toBeNull();
    expect(backups.last).toBeNull();
    const text = logs.join('');
    expect(logs.filter((l) => l.includes('backup request refused'))).toHaveLength(202);
    for (const token of [TOKEN, ...wrong]) expect(text).not.toContain(token);
    await server.close();
  });

  it('with the right token spawns the tool once and streams its output, the estimate header and the Success trailer', async () => {
    const { server, backups } = app();
    const r = await server.inject({ url: '/backup', headers: { authorization: `bearer ${TOKEN}` } });
    expect(r.statusCode).toBe(200);
    expect(r.body).toBe(BODY);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.headers['x-backup-estimated-bytes']).toBe(String(await estimateBackupBytes(dataDir)));
    expect(r.headers['x-backup-estimated-bytes']).toBe('124456');
    expect(r.trailers['x-backup-status']).toBe('Success');
    expect(spawnOwned).toHaveBeenCalledTimes(1);
    const [options] = vi.mocked(spawnOwned).mock.calls[0]!;
    expect(options.killWith).toBe('SIGKILL');
    expect(options.args.join(' ')).not.toContain('agent-secret');
    await vi.waitFor(() => expect(backups.last).toMatchObject({ bytes: BODY.length, failure: null }));
    await server.close();
  });

  it("sends the tool's failure in the trailer", async () => {
    const { server, backups } = app(null, failingTool);
    const r = await server.inject({ url: '/backup' });
    expect(r.statusCode).toBe(200);
    expect(r.body).toBe('partial');
    expect(r.trailers['x-backup-status']).toBe('Failed: failing-backup-tool exited with status 1: InnoDB: Error: log block corrupt');
    await vi.waitFor(() => expect(backups.last?.failure).toMatch(/exited with status 1/));
    await server.close();
  });

  it('refuses a second backup with 429 and Retry-After: 30 while one runs, spawning nothing more', async () => {
    const { server, backups } = app(null, slowTool);
    const first = server.inject({ url: '/backup' });
    await vi.waitFor(() => expect(backups.inProgress).not.toBeNull());
    const second = await server.inject({ url: '/backup' });
    expect(second.statusCode).toBe(429);
    expect(second.headers['retry-after']).toBe('30');
    const head = await server.inject({ method: 'HEAD', url: '/backup' });
    expect([head.statusCode, head.headers['retry-after']]).toEqual([429, '30']);
    expect((await first).body).toBe(BODY);
    expect(spawnOwned).toHaveBeenCalledTimes(1);
    await server.close();
  });

  it('answers 503 with Retry-After: 10 and the reason while backups are refused, to GET and HEAD, spawning nothing', async () => {
    refusal = 'replication is not running yet';
    const { server } = app(null);
    for (const method of ['GET', 'HEAD'] as const) {
      const r = await server.inject({ method, url: '/backup' });
      expect(r.statusCode).toBe(503);
      expect(r.headers['retry-after']).toBe('10');
      if (method === 'GET') expect(r.json()).toEqual({ error: refusal });
    }
    expect(spawnOwned).not.toHaveBeenCalled();
    await server.close();
  });
});

describe('GET /backup with Accept-Encoding: zstd', () => {
  const ZSTD = '/usr/bin/zstd';
  const asked = { authorization: `Bearer ${TOKEN}`, 'accept-encoding': 'gzip, zstd' };

  it("compresses with a zstd child fed by the tool's stdout: Content-Encoding zstd, the exact raw count, the Success trailer", async () => {
    const { server, backups } = app(TOKEN, bigTool, ZSTD);
    const r = await server.inject({ url: '/backup', headers: asked });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-encoding']).toBe('zstd');
    expect(r.trailers['x-backup-status']).toBe('Success');
    expect(zstdDecompressSync(r.rawPayload).equals(big)).toBe(true);
    expect(r.rawPayload.length).toBeLessThan(big.length * 0.6);
    // Child to child: zstd reads the tool's stdout itself (handed over as its stdin), with -1.
    const calls = vi.mocked(spawnOwned).mock.calls.map(([o]) => o);
    expect(calls.map((o) => o.command)).toEqual([bigTool, ZSTD]);
    expect(calls[1]!.args).toEqual(['-1', '-vv', '-c']);
    expect(typeof calls[1]!.stdin).toBe('object');
    expect(calls[1]!.killWith).toBe('SIGKILL');
    // The raw bytes from zstd's own report, not the compressed ones the sidecar relayed.
    await vi.waitFor(() => expect(backups.last).toMatchObject({ bytes: big.length, failure: null }));
    const served = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'backup served');
    expect(served).toMatchObject({ bytes: big.length, wire_bytes: r.rawPayload.length });
    await server.close();
  });

  it('sends the raw stream, without Content-Encoding, when zstd is not installed or not asked for', async () => {
    for (const [zstd, headers] of [['', asked], [ZSTD, { authorization: `Bearer ${TOKEN}` }], [ZSTD, { ...asked, 'accept-encoding': 'gzip, zstdx' }]] as const) {
      vi.mocked(spawnOwned).mockClear();
      const { server, backups } = app(TOKEN, bigTool, zstd);
      const r = await server.inject({ url: '/backup', headers });
      expect(r.headers['content-encoding']).toBeUndefined();
      expect(r.rawPayload.equals(big)).toBe(true);
      expect(spawnOwned).toHaveBeenCalledTimes(1);
      await vi.waitFor(() => expect(backups.last).toMatchObject({ bytes: big.length, failure: null }));
      await server.close();
    }
  });

  it("puts zstd's failure in the trailer when the tool did its part", async () => {
    const brokenZstd = await script('broken-zstd', 'cat >/dev/null\necho "zstd: error 70 : Write error : cannot write block" >&2\nexit 70');
    const { server, backups } = app(null, bigTool, brokenZstd);
    const r = await server.inject({ url: '/backup', headers: { 'accept-encoding': 'zstd' } });
    expect(r.trailers['x-backup-status']).toBe('Failed: broken-zstd exited with status 70: zstd: error 70 : Write error : cannot write block');
    await vi.waitFor(() => expect(backups.last?.failure).toMatch(/broken-zstd exited with status 70/));
    await server.close();
  });

  it("puts the tool's failure in the trailer, not zstd's, and what the tool wrote in the frame", async () => {
    const { server, backups } = app(null, failingTool, ZSTD);
    const r = await server.inject({ url: '/backup', headers: { 'accept-encoding': 'zstd' } });
    expect(r.headers['content-encoding']).toBe('zstd');
    expect(zstdDecompressSync(r.rawPayload).toString()).toBe('partial');
    expect(r.trailers['x-backup-status']).toBe('Failed: failing-backup-tool exited with status 1: InnoDB: Error: log block corrupt');
    await vi.waitFor(() => expect(backups.last).toMatchObject({ bytes: 'partial'.length, failure: expect.stringMatching(/exited with status 1/) }));
    await server.close();
  });
});

/** An upgraded GET /backup on a real socket: everything the sidecar sent until it closed. */
async function upgradedGet(port: number): Promise<Buffer> {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.write(`GET /backup HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: ${STREAM_UPGRADE}\r\n\r\n`);
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

describe('BACKUP_MAX_RATE', () => {
  // 300 kB at 0.1 MB/s: the first chunk goes at once, the rest at the cap.
  const atTheCap = (ms: number) => expect(ms).toBeGreaterThanOrEqual(((big.length - 64 * 1024) / 1e5) * 1000 * 0.9);

  it('holds a plain GET /backup to the cap, every byte of it', async () => {
    const { server } = app(null, bigTool, '', 0.1);
    const started = performance.now();
    const r = await server.inject({ url: '/backup' });
    atTheCap(performance.now() - started);
    expect(r.rawPayload.equals(big)).toBe(true);
    expect(r.trailers['x-backup-status']).toBe('Success');
    await server.close();
  });

  it('holds an upgraded GET /backup (the clone\'s) to the cap, every byte of it', async () => {
    const { server } = app(null, bigTool, '', 0.1);
    await server.listen({ host: '127.0.0.1', port: 0 });
    try {
      const started = performance.now();
      const got = await upgradedGet((server.server.address() as AddressInfo).port);
      atTheCap(performance.now() - started);
      const body = got.subarray(got.indexOf('\r\n\r\n') + 4);
      expect(got.subarray(0, 12).toString()).toBe('HTTP/1.1 101');
      expect(body.subarray(0, big.length).equals(big)).toBe(true);
    } finally {
      await server.close();
    }
  });
});

describe('a client that goes away', () => {
  it('gets the backup tool SIGKILLed at once, even one that ignores SIGTERM and writes nothing, and zstd with it', async () => {
    for (const zstd of ['', '/usr/bin/zstd']) {
      vi.mocked(spawnOwned).mockClear();
      const { server, backups } = app(null, deafTool, zstd);
      await server.listen({ host: '127.0.0.1', port: 0 });
      try {
        const { port } = server.server.address() as AddressInfo;
        // The reply's headers go out as the stream is piped: then the client hangs up.
        await new Promise<void>((resolve) => {
          const req = request({ host: '127.0.0.1', port, path: '/backup', headers: { 'accept-encoding': 'zstd' } }, () => {
            req.destroy();
            resolve();
          });
          req.on('error', () => {});
          req.end();
        });
        const gone = performance.now();
        await vi.waitFor(() => expect(backups.last).not.toBeNull(), { timeout: 10_000, interval: 20 });
        // A SIGTERM would be ignored until the owner's escalation 5 s later.
        expect(performance.now() - gone).toBeLessThan(1500);
        expect(backups.last!.failure).toMatch(/client disconnected/);
        const children = vi.mocked(spawnOwned).mock.results.map((r) => r.value as ReturnType<typeof spawnOwned>);
        expect(children).toHaveLength(zstd ? 2 : 1);
        for (const child of children) expect(running(child.pid), `${zstd || 'no zstd'}: pid ${child.pid}`).toBe(false);
      } finally {
        await server.close();
      }
    }
  });
});

describe('HEAD /backup', () => {
  it('answers what a GET would get (200 and the estimate, 401 without the token) and starts nothing', async () => {
    const { server, backups } = app();
    expect((await server.inject({ method: 'HEAD', url: '/backup' })).statusCode).toBe(401);
    const r = await server.inject({ method: 'HEAD', url: '/backup', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['x-backup-estimated-bytes']).toBe('124456');
    expect(r.body).toBe('');
    expect(spawnOwned).not.toHaveBeenCalled();
    expect(backups.last).toBeNull();
    await server.close();
  });
});

describe('GET /backup/probe (the link timing of CLONE_COMPRESSION=auto)', () => {
  it('HEAD /backup offers zstd beside the upgrade', async () => {
    const { server } = app();
    const r = await server.inject({ method: 'HEAD', url: '/backup', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.headers['x-backup-encodings']).toBe('zstd');
    expect(r.headers['x-backup-upgrades']).toBe('mysql-agent-xbstream');
    await server.close();
  });

  it('sends the bytes asked for, incompressible, with the token only, starting nothing and taking no slot', async () => {
    const { server, backups } = app();
    expect((await server.inject({ url: '/backup/probe?bytes=1000' })).statusCode).toBe(401);
    const r = await server.inject({ url: `/backup/probe?bytes=${3 * 1024 * 1024 + 5}`, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.statusCode).toBe(200);
    expect(r.rawPayload.length).toBe(3 * 1024 * 1024 + 5);
    // Random bytes: zstd cannot make them smaller, so no compression between makes the link look faster.
    expect(zstdCompressSync(r.rawPayload).length).toBeGreaterThan(r.rawPayload.length * 0.99);
    const plain = await server.inject({ url: '/backup/probe', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(plain.rawPayload.length).toBe(16 * 1024 * 1024);
    expect(spawnOwned).not.toHaveBeenCalled();
    expect(backups.inProgress).toBeNull();
    expect(backups.last).toBeNull();
    await server.close();
  });

  it('refuses a size that is not a whole number from 1 to 64 MiB (400)', async () => {
    const { server } = app();
    for (const bytes of ['0', '-1', '1e6', 'x', String(64 * 1024 * 1024 + 1)]) {
      const r = await server.inject({ url: `/backup/probe?bytes=${bytes}`, headers: { authorization: `Bearer ${TOKEN}` } });
      expect(r.statusCode, bytes).toBe(400);
      expect(r.json().error).toMatch(/bytes must be a whole number from 1 to 67108864/);
    }
    await server.close();
  });
});

describe('/readyz, /healthz, /status', () => {
  it('/readyz is 200 when ready and 503 with the reason when not; /healthz always 200; /status passes the source through', async () => {
    const { server } = app();
    expect((await server.inject({ url: '/readyz' })).statusCode).toBe(200);
    refusal = 'IO thread: Access denied';
    const notReady = await server.inject({ url: '/readyz' });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toEqual({ ready: false, reason: 'IO thread: Access denied' });
    expect((await server.inject({ url: '/healthz' })).json()).toEqual({ ok: true });
    expect((await server.inject({ url: '/status' })).json()).toEqual({ role: 'primary', ready: false });
    await server.close();
  });
});
