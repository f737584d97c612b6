/** Small helpers shared by the rig tests: process lookup, polling, raw HTTP with trailers. */
import { execFile, execFileSync } from 'node:child_process';
import { type Server, createServer, request } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { RigNode } from './rig.js';

/** PIDs of processes whose command line matches `pattern` (pgrep -f). */
export function pidsMatching(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** The state letter of /proc/PID/stat, or null when there is no such process. */
function processState(pid: string): { state: string; pgid: number } | null {
  try {
    // "PID (comm) S PPID PGRP ...": comm may hold spaces and parentheses, so split after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, pgid: Number(pgrp) };
  } catch {
    return null;
  }
}

/** Whether a process runs (a zombie waiting for its reaper counts as gone). */
export function running(pid: number): boolean {
  const p = processState(String(pid));
  return p !== null && p.state !== 'Z';
}

/** The running processes of a process group. */
export function processGroup(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      const s = processState(p);
      return s !== null && s.state !== 'Z' && s.pgid === pgid;
    })
    .map(Number);
}

/** Backup tool processes reading this datadir. */
export const backupToolPids = (dataDir: string) => pidsMatching(`mariadb-backup.*--datadir=${dataDir}( |$)`);

/** Polls `probe` until it returns something truthy; a probe that throws counts as "not yet". */
export async function waitUntil<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      lastError = ` (last error: ${(err as Error).message})`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError}`);
    await delay(100);
  }
}

/**
 * Polls a node's /status until its not_ready_reason matches `verdict`, and returns that answer.
 * A reason read at one moment may still be an interim one ("waiting for the local server"
 * while the IO thread already failed): a test waits for the verdict it checks, never a moment.
 */
export async function waitForReason(node: { http(path: string): Promise<Response> }, verdict: RegExp, what: string, timeoutMs = 60_000): Promise<Record<string, any>> {
  let last = '';
  try {
    return await waitUntil(async () => {
      const s = (await (await node.http('/status')).json()) as Record<string, any>;
      last = String(s.not_ready_reason);
      return verdict.test(last) ? s : undefined;
    }, what, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}; the last not_ready_reason was ${JSON.stringify(last)}`);
  }
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly trailers: Record<string, string | undefined>;
  readonly bytes: number;
  readonly error: string | null;
}

/** GETs a URL with node:http (fetch does not expose trailers), counting body bytes. */
export function rawGet(url: string, headers: Record<string, string> = {}, onData?: (bytes: number, destroy: () => void) => void): Promise<RawResponse> {
  return new Promise((resolve) => {
    const req = request(url, { headers: { te: 'trailers', ...headers } }, (res) => {
      let bytes = 0;
      const finish = (error: string | null) =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: res.trailers as Record<string, string>, bytes, error });
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        onData?.(bytes, () => req.destroy());
      });
      res.on('end', () => finish(null));
      res.on('error', (err) => finish(err.message));
      res.on('aborted', () => finish('aborted'));
    });
    req.on('error', (err) => resolve({ status: 0, headers: {}, trailers: {}, bytes: 0, error: err.message }));
    req.end();
  });
}

export const newBaseDir = (name: string) => mkdtemp(join(tmpdir(), `mysql-agent-${name}-`));

/** A port nothing listens on right now (the kernel's pick, released at once). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Writes an executable shell script (a stand-in tool) and returns its path. */
export async function script(path: string, body: string): Promise<string> {
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/** Runs the built CLI (`mysql-agent <args>`) to its end and collects its exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const cli = join(import.meta.dirname, '../../dist/cli.js');
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env, cwd }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs `mysql-agent plan` (the built CLI) and collects its exit code and output. */
export const runPlan = (args: string[], env: NodeJS.ProcessEnv, cwd?: string) => runCli(['plan', ...args], env, cwd);

/** Mounts a tmpfs of `megabytes` at `dir` (root only): a small volume that can really fill up. */
export function mountTmpfs(dir: string, megabytes: number): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', dir]);
}

export function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir]);
  } catch {
    execFileSync('umount', ['-l', dir]);
  }
}

/**
 * An HTTP proxy on `listen` that forwards to `target` and flips one bit of the response body
 * at `offset`, passing status, headers and trailers through: a stream corrupted in flight.
 */
export async function startBitFlipProxy(
  listen: { host: string; port: number },
  target: { host: string; port: number },
  offset: number,
  /** How many backup streams get the flipped bit; the ones after (and /status answers) pass untouched. */
  corrupted = Infinity,
): Promise<Server> {
  let backups = 0;
  const server = createServer((req, res) => {
    // As a plain HTTP proxy that does not pass upgrades: the receiver falls back to the plain GET.
    if (req.headers.upgrade) return req.socket.destroy();
    const upstream = request({ ...target, path: req.url, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      // HEAD /backup (the receiver's probe) carries no stream: only GETs count.
      const flip = req.url === '/backup' && req.method === 'GET' && ++backups <= corrupted;
      let seen = 0;
      up.on('data', (chunk: Buffer) => {
        if (flip && seen <= offset && offset < seen + chunk.length) chunk[offset - seen]! ^= 0x01;
        seen += chunk.length;
        if (!res.write(chunk)) {
          up.pause();
          res.once('drain', () => up.resume());
        }
      });
      up.on('end', () => {
        res.addTrailers(up.trailers);
        res.end();
      });
      up.on('error', () => res.destroy());
      // The receiver gave up: let the sender know, as a direct connection would.
      res.on('close', () => up.destroy());
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(listen.port, listen.host, resolve));
  return server;
}

/** The table the rig tests write to: `app.items`, made on the primary, with `rows` rows. */
export async function createItems(primary: RigNode, rows: number): Promise<void> {
  await primary.sql('CREATE DATABASE app');
  await primary.sql('CREATE TABLE app.items (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))');
  await insertItems(primary, rows);
}

export async function insertItems(primary: RigNode, rows: number): Promise<void> {
  for (let i = 0; i < rows; i++) await primary.sql('INSERT INTO app.items (v) VALUES (?)', [`row-${i}`]);
}

/** The node holds exactly the primary's rows: CHECKSUM TABLE of each table equal, once it has caught up. */
export async function expectSameChecksums(primary: RigNode, node: RigNode, tables: readonly string[]): Promise<void> {
  for (const table of tables) {
    const [expected] = await primary.sql<{ Checksum: number }>(`CHECKSUM TABLE ${table}`);
    if (expected?.Checksum === null || expected?.Checksum === undefined) throw new Error(`${table} has no checksum on the primary`);
    await waitUntil(async () => {
      const [got] = await node.sql<{ Checksum: number }>(`CHECKSUM TABLE ${table}`);
      return String(got!.Checksum) === String(expected.Checksum);
    }, `${table} on node ${node.ordinal} to match the primary`);
  }
}

export const countItems = async (node: RigNode) => Number((await node.sql<{ n: number }>('SELECT COUNT(*) AS n FROM app.items'))[0]!.n);

/**
 * Makes a replica lag for real (a growing Seconds_Behind_Master with both threads running, once
 * the primary writes): MASTER_DELAY of an hour, and its sidecar restarted with READY_MAX_LAG=2
 * so that it turns not ready within seconds.
 */
export async function delayReplica(node: RigNode): Promise<void> {
  await node.sql('STOP SLAVE');
  await node.sql('CHANGE MASTER TO MASTER_DELAY = 3600');
  await node.sql('START SLAVE');
  await node.stopSidecar();
  node.startSidecar({ READY_MAX_LAG: '2' });
  await node.waitFor('/healthz');
}
