/** The owner of child processes: what a child inherits from the agent's environment, and its process group. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it('kills the whole group when aborted while the child runs, grandchildren included', async () => {
    const controller = new AbortController();
    const { child, grandchild } = await spawnShell('sleep 1000 & echo $! > PIDFILE; wait', { signal: controller.signal });
    controller.abort();
    expect(await settles(child.done, 5000)).toBe('rejected');
    expect(await ends(grandchild)).toBe(true);
    expect(processGroup(child.pid)).toEqual([]);
  });
});
