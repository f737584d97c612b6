/**
 * Where the built sidecar listens (no server behind it: /healthz answers while it waits for
 * one). By default on both address families, so IPv6-only clusters reach port 3307 too; an
 * explicit IPv6 literal is accepted. Traffic goes to loopback only (127.0.0.1 and ::1).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../rig/helpers.js';

const CLI = join(import.meta.dirname, '../../dist/cli.js');
let child: ChildProcess | null = null;
afterEach(() => {
  child?.kill('SIGKILL');
  child = null;
});

/** A port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** GET /healthz at host:port: the status code, or the error code. */
function healthz(host: string, port: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/healthz', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

async function startSidecar(env: Record<string, string>): Promise<{ port: number; output: () => string }> {
  const port = await freePort();
  let output = '';
  child = spawn(process.execPath, [CLI, 'sidecar'], {
    env: {
      PATH: process.env.PATH,
      POD_NAME: 'mysql-1',
      DATA_DIR: '/nonexistent',
      BACKUP_PORT: String(port),
      BACKUP_AUTH: 'none',
      // Nothing answers here: the sidecar serves HTTP while it waits.
      MYSQL_HOST: '127.0.0.1',
      MYSQL_PORT: String(await freePort()),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await waitUntil(() => output.includes('"msg":"serving"') || child?.exitCode !== null, 'the sidecar to serve or exit', 10_000);
  return { port, output: () => output };
}

describe('the sidecar listens', () => {
  it('by default on IPv4 and IPv6 at once', async () => {
    const { port, output } = await startSidecar({});
    expect(output()).toContain('"msg":"serving"');
    expect(await healthz('127.0.0.1', port)).toBe(200);
    expect(await healthz('::1', port)).toBe(200);
    expect(JSON.parse(output().split('\n').find((l) => l.includes('"msg":"serving"'))!)).toMatchObject({ bind: '::', port });
  });

  it('on an IPv6 literal given as BACKUP_BIND, and only there', async () => {
    const { port, output } = await startSidecar({ BACKUP_BIND: '::1' });
    expect(output()).toContain('"msg":"serving"');
    expect(await healthz('::1', port)).toBe(200);
    expect(await healthz('127.0.0.1', port)).toBe('ECONNREFUSED');
  });
});
