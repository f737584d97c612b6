/**
 * The sidecar's upgraded GET /backup on loopback, with a real child as the backup tool (a shell
 * that writes a real xbstream, slowly): the same refusals as the plain GET, the verdict as the
 * last file, zstd when asked, and a client that goes away mid-stream ends the tool.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { zstdDecompressSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BackupService } from '../../../agent/sidecar/backup.js';
import { buildHttpServer } from '../../../agent/sidecar/http-server.js';
import { zstdFrame } from '../../../agent/stream/compression.js';
import { STATUS_FILE, STREAM_UPGRADE, parseResponseHead, statusChunk } from '../../../agent/stream/protocol.js';

const TOKEN = 'upgraded-test-token-0123456789';
let dir: string;
let stream: Buffer;
let app: FastifyInstance;
let port: number;
let backups: BackupService;
/** The same, with zstd installed: the tool's stdout goes to a zstd child. */
let appZ: FastifyInstance;
let portZ: number;
let backupsZ: BackupService;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mysql-agent-upgraded-'));
  const files = join(dir, 'files');
  await mkdir(join(files, 'db'), { recursive: true });
  for (const f of ['db/t.ibd', 'backup-my.cnf']) await writeFile(join(files, f), `${f}\n`.repeat(20000));
  stream = execFileSync('mbstream', ['-c', 'db/t.ibd', 'backup-my.cnf'], { cwd: files });
  await writeFile(join(dir, 'stream.xb'), stream);
  // The tool: half the stream, a pause (a client can leave then), the rest.
  const half = Math.floor(stream.length / 2);
  const script = `head -c ${half} ${dir}/stream.xb; sleep 3; tail -c +${half + 1} ${dir}/stream.xb`;
  const data = join(dir, 'data');
  await mkdir(data);
  const serve = async (zstd: string) => {
    const service = new BackupService(
      { tools: { backup: '/bin/sh', extraArgs: ['-c', script], zstd }, mysql: { host: '127.0.0.1', port: 3306, user: 'u', password: 'p' }, dataDir: data },
      pino({ level: 'silent' }),
      new AbortController().signal,
    );
    const server = buildHttpServer({
      idleTimeoutMs: 60_000,
      token: TOKEN,
      backups: service,
      status: { readiness: async () => ({ ready: true, reason: null }), status: async () => ({}), backupRefusal: () => null },
      log: pino({ level: 'silent' }),
    });
    await server.listen({ host: '127.0.0.1', port: 0 });
    return { service, server, port: (server.server.address() as { port: number }).port };
  };
  ({ service: backups, server: app, port } = await serve(''));
  ({ service: backupsZ, server: appZ, port: portZ } = await serve('/usr/bin/zstd'));
});

afterAll(async () => {
  await app?.close();
  await appZ?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Sends an upgraded GET and collects everything that comes back until the server closes. */
async function upgradedGet(headers: Record<string, string>, leaveAfterBytes?: number, to = port): Promise<Buffer> {
  const socket: Socket = connect(to, '127.0.0.1');
  const parts: Buffer[] = [];
  let got = 0;
  socket.on('data', (d: Buffer) => {
    parts.push(d);
    got += d.length;
    if (leaveAfterBytes !== undefined && got >= leaveAfterBytes) socket.destroy();
  });
  const lines = [`GET /backup HTTP/1.1`, `host: x`, 'connection: upgrade', `upgrade: ${STREAM_UPGRADE}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  await new Promise((r) => socket.once('close', r));
  return Buffer.concat(parts);
}

describe('GET /backup upgraded to the bare xbstream', () => {
  it('refuses a wrong token with a plain 401 and starts nothing', async () => {
    const answer = await upgradedGet({ authorization: 'Bearer wrong-token-0123456789' });
    expect(parseResponseHead(answer)?.status).toBe(401);
    expect(backups.last).toBeNull();
  });

  it('sends 101, the tool\'s bytes as they are, then the verdict file with the exact count', async () => {
    const answer = await upgradedGet({ authorization: `Bearer ${TOKEN}` });
    const head = parseResponseHead(answer)!;
    expect(head.status).toBe(101);
    expect(head.headers['content-encoding']).toBeUndefined();
    expect(Buffer.compare(answer.subarray(head.length), Buffer.concat([stream, statusChunk(null, stream.length)]))).toBe(0);
  });

  it('compresses with zstd when asked: the stream and the verdict inside one checksummed frame', async () => {
    const answer = await upgradedGet({ authorization: `Bearer ${TOKEN}`, 'accept-encoding': 'zstd' });
    const head = parseResponseHead(answer)!;
    expect(head.headers['content-encoding']).toBe('zstd');
    const body = zstdDecompressSync(answer.subarray(head.length));
    expect(Buffer.compare(body, Buffer.concat([stream, statusChunk(null, stream.length)]))).toBe(0);
    expect(answer.length - head.length).toBeLessThan(stream.length / 2);
    expect(body.includes(Buffer.from(STATUS_FILE))).toBe(true);
  });

  it("with zstd installed, a zstd child compresses the tool's stdout and the verdict follows in a frame of its own", async () => {
    const answering = upgradedGet({ authorization: `Bearer ${TOKEN}`, 'accept-encoding': 'zstd' }, undefined, portZ);
    // While the tool pauses after half the stream, its progress is what zstd has read of it
    // (its /proc counter, so a few kB of its own start-up on top): no byte passed the sidecar.
    await vi.waitFor(() => expect(backupsZ.inProgress?.bytes).toBeGreaterThanOrEqual(Math.floor(stream.length / 2)), { timeout: 2500, interval: 100 });
    expect(backupsZ.inProgress!.bytes).toBeLessThan(stream.length);
    const answer = await answering;
    const head = parseResponseHead(answer)!;
    expect(head.headers['content-encoding']).toBe('zstd');
    const frames = answer.subarray(head.length);
    // The same bytes for the receiver, the exact raw count (zstd's report) in the verdict.
    expect(Buffer.compare(zstdDecompressSync(frames), Buffer.concat([stream, statusChunk(null, stream.length)]))).toBe(0);
    const verdict = zstdFrame(statusChunk(null, stream.length));
    expect(Buffer.compare(frames.subarray(-verdict.length), verdict)).toBe(0);
    expect(Buffer.compare(zstdDecompressSync(frames.subarray(0, -verdict.length)), stream)).toBe(0);
    await vi.waitFor(() => expect(backupsZ.last).toMatchObject({ bytes: stream.length, failure: null }));
  });

  it('ends the tool when the client leaves mid-stream, with or without zstd (here or a child), and stays up for the next', async () => {
    // The zstd child holds what it makes of this repetitive half until a block fills: that client leaves at the 101.
    const cases = [[{}, port, backups, 200], [{ 'accept-encoding': 'zstd' }, port, backups, 200], [{ 'accept-encoding': 'zstd' }, portZ, backupsZ, 1]] as const;
    for (const [extra, to, service, leaveAt] of cases) {
      await upgradedGet({ authorization: `Bearer ${TOKEN}`, ...extra }, leaveAt, to);
      for (let i = 0; i < 200 && service.inProgress !== null; i++) await delay(50);
      expect(service.inProgress).toBeNull();
      expect(service.last?.failure).toMatch(/client disconnected/);
    }
    const answer = await upgradedGet({ authorization: `Bearer ${TOKEN}` });
    expect(parseResponseHead(answer)?.status).toBe(101);
    expect(backups.last?.failure).toBeNull();
  });
});
