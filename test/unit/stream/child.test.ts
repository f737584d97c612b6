/** The owner of child processes: what a child inherits from the agent's environment, and its process group. */
import { execFile } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SubprocessError } from '../../../agent/core/errors.js';
import { type ChildSpec, childEnvironment, spawnOwned } from '../../../agent/stream/child.js';
import { processGroup, running } from '../../rig/helpers.js';

describe('childEnvironment', () => {
  const agent = {
    PATH: '/usr/bin:/bin',
    HOME: '/var/lib/mysql',
    TMPDIR: '/tmp',
    TZ: 'UTC',
    LANG: 'C.UTF-8',
    LC_ALL: 'C',
    LC_MESSAGES: 'C',
    BACKUP_TOKEN: 'secret-token-0123456789',
    MYSQL_PASSWORD: 'agent-pw',
    REPLICATION_PASSWORD: 'repl-pw',
    NODE_OPTIONS: '--max-old-space-size=64',
    POD_NAME: 'mysql-1',
    KUBERNETES_SERVICE_HOST: '10.0.0.1',
  };

  it('passes on only where programs are, the home and temp directories, the time zone and the locale', () => {
    expect(childEnvironment(agent, {})).toEqual({
      PATH: '/usr/bin:/bin',
      HOME: '/var/lib/mysql',
      TMPDIR: '/tmp',
      TZ: 'UTC',
      LANG: 'C.UTF-8',
      LC_ALL: 'C',
      LC_MESSAGES: 'C',
    });
  });

  it("adds the child's own variables, which win over inherited ones", () => {
    expect(childEnvironment(agent, { MYSQL_PWD: 'agent-pw', TZ: 'Europe/Berlin' })).toMatchObject({ MYSQL_PWD: 'agent-pw', TZ: 'Europe/Berlin', PATH: '/usr/bin:/bin' });
  });

  it('names match whole: a variable that merely starts or ends like an inherited one is not passed on', () => {
    expect(childEnvironment({ PATHS: 'x', MYPATH: 'y', HOME_TOKEN: 'z', LC_: 'w' }, {})).toEqual({});
  });
});

/**
 * Real processes: a shell as the tool, leaving a grandchild (`sleep 1000 &`) in its process
 * group, the way a wrapper set as XTRABACKUP_BIN may.
 */
describe('spawnOwned and the process group', () => {
  const log = pino({ level: 'silent' });
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mysql-agent-child-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function spawnShell(script: string, extra: Partial<ChildSpec> = {}) {
    const pidFile = join(dir, `grandchild-${Math.random().toString(36).slice(2)}`);
    const child = spawnOwned({
      command: 'sh',
      args: ['-c', script.replace('PIDFILE', pidFile)],
      env: {},
      stdin: 'ignore',
      stdout: 'pipe',
      signal: new AbortController().signal,
      killWith: 'SIGKILL',
      log,
      ...extra,
    });
    child.stdout!.resume();
    const grandchild = Number((await waitForFile(pidFile)).trim());
    return { child, grandchild };
  }

  async function waitForFile(path: string): Promise<string> {
    for (let i = 0; i < 100; i++) {
      const text = await readFile(path, 'utf8').catch(() => '');
      if (text.endsWith('\n')) return text;
      await delay(50);
    }
    throw new Error(`${path} was not written`);
  }

  /** Whether the process is gone within a second (a signalled process takes a moment to die). */
  async function ends(pid: number): Promise<boolean> {
    for (let i = 0; i < 20 && running(pid); i++) await delay(50);
    return !running(pid);
  }

  const settles = (done: Promise<void>, ms: number) =>
    Promise.race([done.then(() => 'resolved', () => 'rejected'), delay(ms).then(() => 'pending')]);

  it('settles `done` and leaves no process of the group when the child exits leaving a grandchild on its pipes', async () => {
    const { child, grandchild } = await spawnShell('sleep 1000 & echo $! > PIDFILE; echo out');
    expect(await settles(child.done, 5000)).toBe('resolved');
    expect(await ends(grandchild)).toBe(true);
    expect(processGroup(child.pid)).toEqual([]);
  });

  it('kills a grandchild that let go of the pipes once the child exits', async () => {
    const { child, grandchild } = await spawnShell('sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > PIDFILE');
    expect(await settles(child.done, 5000)).toBe('resolved');
    expect(await ends(grandchild)).toBe(true);
    expect(processGroup(child.pid)).toEqual([]);
  });

  it('kills the child at once when its signal was aborted before it started', async () => {
    const controller = new AbortController();
    controller.abort();
    const started = performance.now();
    const child = spawnOwned({ command: 'sleep', args: ['1000'], env: {}, stdin: 'ignore', stdout: 'ignore', signal: controller.signal, killWith: 'SIGKILL', log });
    await expect(child.done).rejects.toThrow('sleep was killed by SIGKILL');
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('kill() SIGKILLs the whole group; a SIGKILL child is never sent SIGTERM first', async () => {
    // A child that ignores SIGTERM, as mariadb-backup does: only SIGKILL ends it at once.
    const { child, grandchild } = await spawnShell("trap '' TERM; sleep 1000 & echo $! > PIDFILE; wait");
    const started = performance.now();
    child.kill();
    await expect(child.done).rejects.toThrow(/^sh was killed by SIGKILL$/);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(await ends(grandchild)).toBe(true);
    expect(processGroup(child.pid)).toEqual([]);
  });

  it('with killWith SIGTERM: a child that honours it ends by it; one that ignores it is SIGKILLed 5 s later', async () => {
    const polite = await spawnShell('sleep 1000 & echo $! > PIDFILE; wait', { killWith: 'SIGTERM' });
    polite.child.kill();
    await expect(polite.child.done).rejects.toThrow('sh was killed by SIGTERM');
    const deaf = await spawnShell("trap '' TERM; sleep 1000 & echo $! > PIDFILE; wait", { killWith: 'SIGTERM' });
    const started = performance.now();
    deaf.child.kill();
    deaf.child.kill(); // a second request does not start a second clock
    expect(await settles(deaf.child.done, 4000)).toBe('pending');
    await expect(deaf.child.done).rejects.toThrow('sh was killed by SIGKILL');
    expect(performance.now() - started).toBeGreaterThanOrEqual(4900);
    expect(performance.now() - started).toBeLessThan(7000);
    expect(await ends(deaf.grandchild)).toBe(true);
  }, 15_000);

  it('one escalation clock per child, from its first kill(), for SIGTERM children only, and gone with the child', async () => {
    // Fake clocks only: the children are real and so are their deaths.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const sigkill = await spawnShell("trap '' TERM; sleep 1000 & echo $! > PIDFILE; wait");
      sigkill.child.kill();
      expect(vi.getTimerCount()).toBe(0);
      await expect(sigkill.child.done).rejects.toThrow('sh was killed by SIGKILL');
      const deaf = await spawnShell("trap '' TERM; sleep 1000 & echo $! > PIDFILE; wait", { killWith: 'SIGTERM' });
      deaf.child.kill();
      deaf.child.kill();
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(5000);
      await expect(deaf.child.done).rejects.toThrow('sh was killed by SIGKILL');
      const polite = await spawnShell('sleep 1000 & echo $! > PIDFILE; wait', { killWith: 'SIGTERM' });
      polite.child.kill();
      expect(vi.getTimerCount()).toBe(1);
      await expect(polite.child.done).rejects.toThrow('sh was killed by SIGTERM');
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('rejects with the exit status and the last five stderr lines, and keeps the first watched line', async () => {
    const child = spawnOwned({
      command: 'sh',
      args: ['-c', 'echo "disk full: errno 28" >&2; echo "still errno 28" >&2; for i in 1 2 3 4 5 6; do echo "line $i" >&2; done; exit 3'],
      env: {},
      stdin: 'ignore',
      stdout: 'ignore',
      signal: new AbortController().signal,
      killWith: 'SIGKILL',
      log,
      watchFor: /errno 28/,
    });
    const err = await child.done.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(SubprocessError);
    expect((err as Error).message).toBe('sh exited with status 3: line 2 | line 3 | line 4 | line 5 | line 6');
    expect(child.stderrTail()).toBe('line 2 | line 3 | line 4 | line 5 | line 6');
    expect(child.watched()).toBe('disk full: errno 28');
  });

  it('logs each stderr line with the tool and its pid (per-file chatter at debug), and lets go of the signal when done', async () => {
    const lines: Record<string, unknown>[] = [];
    const capture = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    for (const [script, code] of [['echo "[01] Copying ./ibdata1" >&2; echo "InnoDB: news" >&2', 0], ['exit 2', 2]] as const) {
      const controller = new AbortController();
      const child = spawnOwned({ command: 'sh', args: ['-c', script], env: {}, stdin: 'ignore', stdout: 'ignore', signal: controller.signal, killWith: 'SIGKILL', log: capture });
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
      await child.done.catch(() => {});
      expect(getEventListeners(controller.signal, 'abort'), `after exit ${code}`).toHaveLength(0);
      if (code === 0) {
        expect(lines.map((l) => [l.level, l.msg, l.tool, l.child_pid, l.stderr])).toEqual([
          [20, 'tool output', 'sh', child.pid, '[01] Copying ./ibdata1'],
          [30, 'tool output', 'sh', child.pid, 'InnoDB: news'],
        ]);
      }
    }
    const failed = new AbortController();
    const missing = spawnOwned({ command: '/nonexistent/tool', args: [], env: {}, stdin: 'ignore', stdout: 'ignore', signal: failed.signal, killWith: 'SIGKILL', log: capture });
    await missing.done.catch(() => {});
    expect(getEventListeners(failed.signal, 'abort')).toHaveLength(0);
  });

  it('a child that fails while nobody awaits `done` is no unhandled rejection, and `done` still says why later', async () => {
    const unhandled: unknown[] = [];
    const note = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', note);
    try {
      const child = spawnOwned({ command: 'sh', args: ['-c', 'exit 4'], env: {}, stdin: 'ignore', stdout: 'ignore', signal: new AbortController().signal, killWith: 'SIGKILL', log });
      await ends(child.pid);
      await delay(100);
      expect(unhandled).toEqual([]);
      await expect(child.done).rejects.toThrow(/^sh exited with status 4/);
    } finally {
      process.off('unhandledRejection', note);
    }
  });

  it('rejects, naming the tool, when it cannot be started at all', async () => {
    const child = spawnOwned({ command: '/nonexistent/mariadb-backup', args: [], env: {}, stdin: 'ignore', stdout: 'ignore', signal: new AbortController().signal, killWith: 'SIGKILL', log });
    await expect(child.done).rejects.toThrow(/^mariadb-backup exited with status null: spawn \/nonexistent\/mariadb-backup ENOENT$/);
    expect(child.pid).toBe(-1);
  });

  it("installs one exit hook for all children, and that hook SIGKILLs every live child's group", async () => {
    const before = process.listeners('exit');
    const first = await spawnShell('sleep 1000 & echo $! > PIDFILE; wait');
    const second = await spawnShell('sleep 1000 & echo $! > PIDFILE; wait');
    const added = process.listeners('exit').filter((l) => !before.includes(l));
    // Installed by the first spawn of this process (an earlier test may have made it already): one.
    expect(added.length).toBeLessThanOrEqual(1);
    const hooks = process.listeners('exit').filter((l) => String(l).includes('liveGroups'));
    expect(hooks).toHaveLength(1);
    (hooks[0] as () => void)();
    for (const { child, grandchild } of [first, second]) {
      await expect(child.done).rejects.toThrow('sh was killed by SIGKILL');
      expect(await ends(grandchild)).toBe(true);
    }
  });

  it('kills every live group when the agent process exits, whatever the path (the exit hook)', async () => {
    const pidFile = join(dir, 'grandchild-of-exiting-agent');
    const tsx = join(import.meta.dirname, '../../../node_modules/tsx/dist/cli.mjs');
    const agent = join(import.meta.dirname, 'exiting-agent.ts');
    await new Promise<void>((resolve, reject) =>
      execFile(process.execPath, [tsx, agent, pidFile], { timeout: 20_000, env: { PATH: process.env.PATH } }, (err) => (err ? reject(err) : resolve())),
    );
    const grandchild = Number((await readFile(pidFile, 'utf8')).trim());
    expect(grandchild).toBeGreaterThan(0);
    expect(await ends(grandchild)).toBe(true);
  }, 30_000);

  it('kills the whole group when aborted while the child runs, grandchildren included', async () => {
    const controller = new AbortController();
    const { child, grandchild } = await spawnShell('sleep 1000 & echo $! > PIDFILE; wait', { signal: controller.signal });
    controller.abort();
    expect(await settles(child.done, 5000)).toBe('rejected');
    expect(await ends(grandchild)).toBe(true);
    expect(processGroup(child.pid)).toEqual([]);
  });
});
