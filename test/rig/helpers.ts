/** Small helpers shared by the rig tests: process lookup, polling, raw HTTP with trailers. */
import { execFile, execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

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

/** Backup tool processes reading this datadir. */
export const backupToolPids = (dataDir: string) => pidsMatching(`mariadb-backup.*--datadir=${dataDir}( |$)`);

export async function waitUntil<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(100);
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

/** Runs `mysql-agent plan` (the built CLI) and collects its exit code and output. */
export function runPlan(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const cli = join(import.meta.dirname, '../../dist/cli.js');
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, 'plan', ...args], { env }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
