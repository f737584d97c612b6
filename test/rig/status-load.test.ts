/**
 * /status and /metrics are unauthenticated: any pod can flood them. A bounded flood of 500
 * concurrent /status requests (and /metrics scrapes) on loopback against a replica must cost its
 * server nothing beyond the sidecar's own once-a-second reading, and must not push its /readyz
 * past the readiness probe's timeout (read from the StatefulSet), or the replica flaps out of
 * mysql-read while it replicates fine.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../agent/mysql/db.js';
import { CREDENTIALS, REPO, Rig } from './rig.js';
import { newBaseDir, waitUntil } from './helpers.js';

const CONCURRENCY = 500;
const FLOOD_MS = 8000;
const PROBE_EVERY_MS = 250;

let rig: Rig;
let probeTimeoutMs: number;

beforeAll(async () => {
  const statefulset = parse(await readFile(join(REPO, 'manifests/base/statefulset.yaml'), 'utf8'));
  const sidecar = statefulset.spec.template.spec.containers.find((c: { name: string }) => c.name === 'sidecar');
  probeTimeoutMs = sidecar.readinessProbe.timeoutSeconds * 1000;
  rig = new Rig({ baseDir: await newBaseDir('status-load'), ipPrefix: '127.0.2.1' });
  await rig.up(2);
});

afterAll(async () => {
  await rig?.destroy();
});

/** One GET; resolves with the status code (0 on an error) and the time it took. */
function get(agent: Agent, host: string, path: string, timeoutMs: number): Promise<{ status: number; ms: number; error?: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const done = (status: number, error?: string) => resolve({ status, ms: performance.now() - started, error });
    const req = request({ host, port: 3307, path, agent, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode ?? 0));
      res.on('error', (err) => done(0, err.message));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => done(0, err.message));
    req.end();
  });
}

describe('a flood of unauthenticated /status and /metrics requests', () => {
  it(`leaves /readyz answering within the readiness probe's timeout (${CONCURRENCY} concurrent, ${FLOOD_MS / 1000} s)`, async () => {
    const replica = rig.node(1);
    const flood = spawn(process.execPath, [join(import.meta.dirname, 'flood.mjs'), replica.ip, '3307', String(CONCURRENCY), String(FLOOD_MS)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    flood.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const flooded = new Promise<{ answered: number; failed: number }>((resolve, reject) =>
      flood.once('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`flood exited ${code}`)))),
    );
    const questions = async () => Number((await replica.sql<{ Value: string }>("SHOW GLOBAL STATUS LIKE 'Questions'"))[0]!.Value);
    const questionsBefore = await questions();
    const probe = new Agent({ keepAlive: false });
    const probes: { status: number; ms: number; error?: string }[] = [];
    const deadline = performance.now() + FLOOD_MS;
    await new Promise((r) => setTimeout(r, 500));
    while (performance.now() < deadline - 500) {
      // The kubelet's probe: a new connection each time. Waited for longer than the kubelet
      // would, so a late answer is measured, not cut off.
      probes.push(await get(probe, replica.ip, '/readyz', probeTimeoutMs * 3));
      await new Promise((r) => setTimeout(r, PROBE_EVERY_MS));
    }
    const { answered, failed } = await flooded;
    // Statements the server ran meanwhile (this query and the one before included).
    const ran = (await questions()) - questionsBefore;
    const slowest = Math.max(...probes.map((p) => p.ms));
    console.log(
      `flood: ${answered} answered, ${failed} failed; server ran ${ran} statements; /readyz ${probes.length} probes, slowest ${slowest.toFixed(0)} ms (${probes.map((p) => p.ms.toFixed(0)).join(', ')}), probe timeout ${probeTimeoutMs} ms`,
    );
    // The flood was real: thousands of requests, every one answered.
    expect(answered).toBeGreaterThan(CONCURRENCY * 4);
    expect(failed).toBe(0);
    // What the sidecar reads by itself (a few statements a second), not a statement per request.
    expect(ran).toBeLessThan((FLOOD_MS / 1000) * 10);
    expect(probes.length).toBeGreaterThan(5);
    for (const p of probes) {
      expect(p, JSON.stringify(p)).toMatchObject({ status: 200 });
      expect(p.ms).toBeLessThan(probeTimeoutMs);
    }
  }, 120_000);
});

describe('a server that hangs (SIGSTOP)', () => {
  it('leaves /readyz answering at once: 503 naming the timeout, ready again when the server goes on', async () => {
    const replica = rig.node(1);
    const pid = replica.server!.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      const started = performance.now();
      const probes: number[] = [];
      const reason = await waitUntil(async () => {
        const r = await get(new Agent(), replica.ip, '/readyz', probeTimeoutMs * 3);
        probes.push(r.ms);
        if (r.status !== 503) return undefined;
        return ((await (await fetch(replica.url('/readyz'))).json()) as { reason: string }).reason;
      }, 'a 503 from /readyz', 15_000);
      expect(reason).toMatch(/local server does not answer: .*(timeout|timed ?out)/i);
      // Every probe meanwhile was answered in time, 200 from the last reading, then 503.
      expect(Math.max(...probes)).toBeLessThan(probeTimeoutMs);
      // One reading's query timeout (5 s) and the interval, not the kubelet's patience.
      expect(performance.now() - started).toBeLessThan(8000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await replica.waitFor('/readyz', 20_000);
  }, 60_000);
});

describe("the agent's connection to its server", () => {
  const connect = () => createDb({ host: rig.node(1).ip, port: 3306, user: CREDENTIALS.agentUser, password: CREDENTIALS.agent });

  it('gives up on a statement that does not answer in time, and goes on with the next', async () => {
    const db = connect();
    try {
      const started = performance.now();
      await expect(db.query('SELECT SLEEP(10)', 500)).rejects.toThrow(/timeout/i);
      expect(performance.now() - started).toBeLessThan(2000);
      expect(await db.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await db.end();
    }
  });

  it('queues a bounded number of statements: beyond the queue, a statement fails at once', async () => {
    const db = connect();
    try {
      // Two connections busy, sixteen waiting, the rest refused.
      const results = await Promise.allSettled(Array.from({ length: 30 }, () => db.query('SELECT SLEEP(0.3)', 10_000)));
      const refused = results.filter((r) => r.status === 'rejected');
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(18);
      expect(refused).toHaveLength(12);
      for (const r of refused) expect(String((r as PromiseRejectedResult).reason)).toMatch(/queue limit/i);
    } finally {
      await db.end();
    }
  });
});
