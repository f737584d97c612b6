/**
 * The backup endpoint of a real sidecar over real HTTP: authentication before anything is
 * spawned, HEAD answered without a backup, one backup at a time, headers sent before the tool's
 * first byte, and no process left behind when the client goes away, the sidecar is stopped or
 * a wrapper leaves one in the tool's process group. The sender is throttled so a backup lasts
 * long enough to interfere.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rig, type RigNode } from './rig.js';
import { backupToolPids, newBaseDir, processGroup, rawGet, waitUntil } from './helpers.js';

let rig: Rig;
let primary: RigNode;
const SLOW = { XTRABACKUP_ARGS: '' };

beforeAll(async () => {
  rig = new Rig({ baseDir: await newBaseDir('backup'), ipPrefix: '127.0.0.6' });
  primary = rig.node(0);
  await primary.up();
  // Throttled to ~1 MB/s so a 17 MB backup runs for seconds.
  SLOW.XTRABACKUP_ARGS = `--defaults-file=${primary.dir}/my.cnf --throttle=1`;
  await primary.stopSidecar();
  primary.startSidecar(SLOW);
  await primary.waitFor('/readyz');
});

afterAll(async () => {
  await rig?.destroy();
});

const auth = () => ({ authorization: `Bearer ${rig.token}` });

describe('GET /backup', () => {
  it('answers 401 without a token or with a wrong one, and starts no process', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: `Basic ${Buffer.from(`x:${rig.token}`).toString('base64')}` },
      { authorization: `Bearer ${rig.token}x` },
    ];
    for (const headers of attempts) {
      const res = await primary.http('/backup', { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(backupToolPids(primary.dataDir)).toEqual([]);
    }
    const status = (await (await primary.http('/status')).json()) as Record<string, unknown>;
    expect(status.last_backup).toBeNull();
    expect(status.backup_in_progress).toBeNull();
    const refused = primary.sidecarLines().filter((l) => l.msg === 'backup request refused');
    expect(refused).toHaveLength(attempts.length);
    expect(primary.sidecarOutput).not.toContain(rig.token);
  });

  it('answers HEAD /backup without starting anything: the headers a GET would get, and the slot stays free', async () => {
    let sawTool = false;
    const watcher = setInterval(() => {
      if (backupToolPids(primary.dataDir).length > 0) sawTool = true;
    }, 20);
    try {
      const head = await primary.http('/backup', { method: 'HEAD', headers: auth() });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-type')).toBe('application/octet-stream');
      expect(Number(head.headers.get('x-backup-estimated-bytes'))).toBeGreaterThan(1_000_000);
      expect((await primary.http('/backup', { method: 'HEAD' })).status).toBe(401);
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      clearInterval(watcher);
    }
    expect(sawTool).toBe(false);
    const status = (await (await primary.http('/status')).json()) as Record<string, unknown>;
    expect(status.backup_in_progress).toBeNull();
    expect(status.last_backup).toBeNull();
    expect(primary.sidecarLines().some((l) => l.msg === 'backup started')).toBe(false);
  });

  it('streams a backup that ends with X-Backup-Status: Success', async () => {
    await primary.stopSidecar();
    primary.startSidecar();
    await primary.waitFor('/healthz');
    const res = await rawGet(primary.url('/backup'), auth());
    expect(res.status).toBe(200);
    expect(res.error).toBeNull();
    expect(res.trailers['x-backup-status']).toBe('Success');
    expect(res.bytes).toBeGreaterThan(1_000_000);
    const status = (await (await primary.http('/status')).json()) as Record<string, any>;
    expect(status.last_backup).toMatchObject({ failure: null, bytes: res.bytes });
    await primary.stopSidecar();
    primary.startSidecar(SLOW);
    await primary.waitFor('/healthz');
  });

  it('refuses a second concurrent backup with 429 and Retry-After', async () => {
    // The first client leaves only once the checks below are done (its tool then killed).
    let checked = false;
    const first = rawGet(primary.url('/backup'), auth(), (_bytes, destroy) => {
      if (checked) destroy();
    });
    let second: Response | undefined;
    await waitUntil(() => backupToolPids(primary.dataDir).length > 0, 'the first backup to start');
    second = await primary.http('/backup', { headers: auth() });
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
    // HEAD tells a would-be client the same, and starts nothing either.
    expect((await primary.http('/backup', { method: 'HEAD', headers: auth() })).status).toBe(429);
    expect(backupToolPids(primary.dataDir)).toHaveLength(1);
    checked = true;
    await first;
    // SIGKILLed at once (README): a SIGTERM the tool ignores would leave it for the owner's 5 s escalation.
    await waitUntil(() => backupToolPids(primary.dataDir).length === 0, 'the first backup tool to be killed', 2000);
    // The tool is gone a moment before the sidecar has recorded the backup and is free again.
    await waitUntil(async () => ((await (await primary.http('/status')).json()) as Record<string, any>).serving_backup === false, 'the sidecar to be free');
  });

  it('kills the backup tool when the client disconnects mid-stream', async () => {
    const res = await rawGet(primary.url('/backup'), auth(), (bytes, destroy) => {
      if (bytes > 100_000) destroy();
    });
    expect(res.error).not.toBeNull();
    // At once (README): well before the 5 s after which the owner would escalate a SIGTERM.
    await waitUntil(() => backupToolPids(primary.dataDir).length === 0, 'no backup tool left', 2000);
    const status = await waitUntil(async () => {
      const s = (await (await primary.http('/status')).json()) as Record<string, any>;
      return s.last_backup?.finished_at ? s : undefined;
    }, 'the backup to be recorded');
    expect(status.last_backup.failure).toContain('client disconnected');
  });

  it('leaves no backup process when the sidecar gets SIGTERM mid-backup, and exits 0 within seconds', async () => {
    const pending = rawGet(primary.url('/backup'), auth());
    await waitUntil(() => backupToolPids(primary.dataDir).length > 0, 'the backup to start');
    await waitUntil(() => primary.sidecarLines().some((l) => l.msg === 'backup started'), 'the backup log line');
    const started = Date.now();
    const { code } = await primary.stopSidecar('SIGTERM');
    expect(code).toBe(0);
    // The tool is SIGKILLed, not SIGTERMed and escalated after 5 s.
    expect(Date.now() - started).toBeLessThan(2000);
    expect(backupToolPids(primary.dataDir)).toEqual([]);
    const res = await pending;
    // The client never sees a success it did not get.
    expect(res.trailers['x-backup-status']).not.toBe('Success');
    primary.startSidecar();
    await primary.waitFor('/readyz');
  });
});

describe('the backup tool behind a wrapper (XTRABACKUP_BIN)', () => {
  afterAll(async () => {
    await primary.stopSidecar();
    primary.startSidecar();
    await primary.waitFor('/readyz');
  });

  /** Restarts the sidecar with a shell script in front of mariadb-backup. */
  async function sidecarWithWrapper(name: string, body: string): Promise<void> {
    const wrapper = join(rig.options.baseDir, name);
    await writeFile(wrapper, `#!/bin/sh\n${body}\nexec mariadb-backup "$@"\n`, { mode: 0o755 });
    await primary.stopSidecar();
    primary.startSidecar({ XTRABACKUP_BIN: wrapper });
    await primary.waitFor('/readyz');
  }

  it('sends the response headers at once, while the tool is still silent', async () => {
    await sidecarWithWrapper('backup-silent-5s', 'sleep 5');
    const started = Date.now();
    let headersAfter = -1;
    let firstByteAfter = -1;
    const res = await new Promise<{ status: number; trailer: string | undefined }>((resolve, reject) => {
      const req = request(primary.url('/backup'), { headers: { te: 'trailers', ...auth() } }, (r) => {
        headersAfter = Date.now() - started;
        r.once('data', () => (firstByteAfter = Date.now() - started));
        r.resume();
        r.on('end', () => resolve({ status: r.statusCode ?? 0, trailer: r.trailers['x-backup-status'] }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(res).toEqual({ status: 200, trailer: 'Success' });
    expect(headersAfter).toBeLessThan(2000);
    expect(firstByteAfter).toBeGreaterThanOrEqual(5000);
  });

  it('ends a backup whose tool left a grandchild in its group (`sleep 1000 &`): nothing of the group survives, the slot frees', { timeout: 90_000 }, async () => {
    const pgidFile = join(rig.options.baseDir, 'backup-wrapper.pgid');
    await sidecarWithWrapper('backup-with-grandchild', `echo $$ > ${pgidFile}\nsleep 1000 &`);
    const ended = await Promise.race([rawGet(primary.url('/backup'), auth()), delay(60_000).then(() => null)]);
    const pgid = Number((await readFile(pgidFile, 'utf8')).trim());
    try {
      expect(ended, 'the backup reply did not end within 60 s').not.toBeNull();
      expect(ended!.trailers['x-backup-status']).toBe('Success');
      await waitUntil(() => processGroup(pgid).length === 0, "the wrapper's process group to be empty", 5000);
      const status = await waitUntil(async () => {
        const s = (await (await primary.http('/status')).json()) as Record<string, any>;
        return s.serving_backup === false ? s : undefined;
      }, 'the backup slot to free', 5000);
      expect(status.last_backup).toMatchObject({ failure: null, bytes: ended!.bytes });
      // And the next backup is served, not refused as busy.
      const next = await rawGet(primary.url('/backup'), auth());
      expect(next.status).toBe(200);
      expect(next.trailers['x-backup-status']).toBe('Success');
    } finally {
      for (const pid of processGroup(pgid)) process.kill(pid, 'SIGKILL');
    }
  });
});
