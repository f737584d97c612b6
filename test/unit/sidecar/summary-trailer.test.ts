/**
 * The plain GET /backup in zstd, on loopback, with a real child as the backup tool (a shell that
 * writes a real xbstream made by mbstream) and a real zstd child: the sidecar reads the tool's
 * stream on its way into zstd and sends the summary trailer a backup stores the stream by,
 * and a stream that is not whole is a failed backup, not a summary.
 */
import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupService } from '../../../agent/sidecar/backup.js';
import { buildHttpServer } from '../../../agent/sidecar/http-server.js';
import { SUMMARY_MAX_BYTES, SUMMARY_TRAILER, parseSummaryTrailer } from '../../../agent/stream/protocol.js';

const TOKEN = 'summary-test-token-0123456789';
const INFO = 'uuid = 1\nserver_version = 10.11.14-MariaDB\ntool_version = 10.11.14-MariaDB\n';
const BINLOG = 'mysql-bin.000002\t1234\t0-1-7\n';
let dir: string;
let whole: Buffer;
const servers: FastifyInstance[] = [];

/** mbstream -c of `names` made in a folder of their own: a real xbstream. */
async function xbstream(name: string, files: Record<string, string>): Promise<string> {
  const at = join(dir, name);
  await mkdir(join(at, 'db'), { recursive: true });
  for (const [f, text] of Object.entries(files)) await writeFile(join(at, f), text);
  const path = join(dir, `${name}.xb`);
  await writeFile(path, execFileSync('mbstream', ['-c', ...Object.keys(files)], { cwd: at, maxBuffer: 64 * 2 ** 20 }));
  return path;
}

/** A sidecar whose backup tool is `script`; zstd '' for none installed. */
async function serve(script: string, zstd = '/usr/bin/zstd'): Promise<number> {
  const data = await mkdtemp(join(dir, 'data-'));
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
  servers.push(server);
  return (server.server.address() as { port: number }).port;
}

interface Answer {
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  readonly trailers: Record<string, string | undefined>;
}

function get(port: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${TOKEN}`, 'accept-encoding': 'zstd', te: 'trailers' };
    const req = request({ host: '127.0.0.1', port, path: '/backup', headers, maxHeaderSize: 2 * SUMMARY_MAX_BYTES }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(parts), trailers: res.trailers }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mysql-agent-summary-'));
  const path = await xbstream('whole', {
    'db/t.ibd': 'row\n'.repeat(300_000),
    'xtrabackup_binlog_info': BINLOG,
    'backup-my.cnf': '[mysqld]\ninnodb_page_size=16384\n',
    'xtrabackup_info': INFO,
    'xtrabackup_checkpoints': 'backup_type = full-backuped\n',
  });
  whole = await readFile(path);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await rm(dir, { recursive: true, force: true });
});

describe('plain GET /backup in zstd: the summary trailer', () => {
  it('announces the trailer, sends the stream in zstd, and summarizes it: the exact tool bytes and the info files', async () => {
    const port = await serve(`cat ${join(dir, 'whole.xb')}`);
    const answer = await get(port);
    expect(answer.headers['content-encoding']).toBe('zstd');
    expect(String(answer.headers.trailer).split(/\s+/)).toContain(SUMMARY_TRAILER);
    expect(zstdDecompressSync(answer.body).equals(whole)).toBe(true);
    expect(answer.trailers['x-backup-status']).toBe('Success');
    const summary = parseSummaryTrailer(answer.trailers[SUMMARY_TRAILER]!);
    expect(summary.rawBytes).toBe(whole.length);
    expect(Object.fromEntries(summary.kept)).toEqual({
      xtrabackup_binlog_info: BINLOG,
      'backup-my.cnf': '[mysqld]\ninnodb_page_size=16384\n',
      xtrabackup_info: INFO,
      xtrabackup_checkpoints: 'backup_type = full-backuped\n',
    });
  });

  it('fails a stream that lacks its closing files, though the tool exited 0, and sends no summary', async () => {
    const path = await xbstream('short', { 'db/t.ibd': 'row\n'.repeat(1000), 'backup-my.cnf': 'x\n' });
    const answer = await get(await serve(`cat ${path}`));
    expect(answer.trailers['x-backup-status']).toBe(
      "Failed: the tool's stream is not a complete xbstream: xbstream: the stream ends without xtrabackup_info or mariadb_backup_info, xtrabackup_checkpoints or mariadb_backup_checkpoints",
    );
    expect(answer.trailers[SUMMARY_TRAILER]).toBeUndefined();
  });

  it('fails a stream cut inside a chunk, and one that is no xbstream at all', async () => {
    const cut = await get(await serve(`head -c ${whole.length - 100} ${join(dir, 'whole.xb')}`));
    expect(cut.trailers['x-backup-status']).toBe("Failed: the tool's stream is not a complete xbstream: xbstream: the stream ends inside a chunk");
    expect(cut.trailers[SUMMARY_TRAILER]).toBeUndefined();
    const junk = await get(await serve('head -c 100000 /dev/zero'));
    expect(junk.trailers['x-backup-status']).toMatch(/^Failed: the tool's stream is not a complete xbstream: xbstream: bad chunk magic/);
    expect(zstdDecompressSync(junk.body).length).toBe(100000);
  });

  it('without zstd installed the stream goes raw, with no summary announced (the receiver reads it itself)', async () => {
    const answer = await get(await serve(`cat ${join(dir, 'whole.xb')}`, ''));
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(String(answer.headers.trailer)).toBe('x-backup-status');
    expect(answer.body.equals(whole)).toBe(true);
    expect(answer.trailers[SUMMARY_TRAILER]).toBeUndefined();
  });
});
