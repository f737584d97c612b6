/**
 * The built sidecar and init as processes, with tools that are shell scripts standing in for
 * the backup tool (they stream a real xbstream made by `mbstream -c`) and wrapping the real
 * `mbstream` and `sync`: every line either process writes, on stdout and stderr, is a JSON log
 * event; and each child gets only the environment it needs. No MySQL server is involved (the
 * sidecar waits for one that never comes), so this runs without the rig.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, rawGet, script, waitUntil } from '../rig/helpers.js';

const CLI = join(import.meta.dirname, '../../dist/cli.js');
const SECRETS = {
  BACKUP_TOKEN: 'cli-test-token-0123456789abcdef',
  MYSQL_PASSWORD: 'cli-test-agent-pw',
  REPLICATION_PASSWORD: 'cli-test-repl-pw',
  // Anything else the pod's environment holds is no child's business either.
  UNRELATED_SECRET: 'cli-test-unrelated-secret',
};

let base: string;
let dumps: string;
let port: number;
/** What the stand-in backup tool streams (in this order), from `backupFiles`. */
const BACKUP_FILES = ['backup-my.cnf', 'mysql/db.opt', 'xtrabackup_binlog_info', 'xtrabackup_info', 'xtrabackup_checkpoints'];
let backupFiles: string;

interface Output {
  stdout: string;
  stderr: string;
}

function start(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; out: Output; closed: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Output = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, out, closed };
}

/** Every non-empty line parses as a JSON object (a pino event); returns the ones that do not. */
function nonJsonLines(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => {
      try {
        return typeof JSON.parse(l) !== 'object';
      } catch {
        return true;
      }
    });
}

/** `env` output as a map. */
async function readDump(name: string): Promise<Record<string, string>> {
  const text = await readFile(join(dumps, `${name}.env`), 'utf8');
  return Object.fromEntries(text.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

let sidecar: ReturnType<typeof start>;
let init: ReturnType<typeof start>;
let initCode: number | null;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'mysql-agent-cli-processes-'));
  dumps = join(base, 'dumps');
  const bin = join(base, 'bin');
  backupFiles = join(base, 'backup-files');
  for (const d of [dumps, bin, join(backupFiles, 'mysql'), join(base, 'sidecar-data'), join(base, 'sidecar-conf'), join(base, 'init-data'), join(base, 'init-conf'), join(base, 'config-map')]) {
    await mkdir(d, { recursive: true });
  }
  for (const f of BACKUP_FILES) await writeFile(join(backupFiles, f), `${f}\n`);
  await writeFile(join(base, 'config-map', 'primary.cnf'), '[mysqld]\nlog-bin\n');
  await writeFile(join(base, 'config-map', 'replica.cnf'), '[mysqld]\nread-only=1\n');
  // The tools dump their environment to a file named in their own text (not in the environment).
  const backupTool = await script(
    join(base, 'fake-backup'),
    `env > ${dumps}/backup.env\ncd ${backupFiles} && exec mbstream -c ${BACKUP_FILES.join(' ')}`,
  );
  const prepareTool = await script(join(base, 'fake-prepare'), `env > ${dumps}/prepare.env`);
  const streamTool = await script(join(base, 'mbstream-wrapper'), `env > ${dumps}/extract.env\nexec mbstream "$@"`);
  await script(join(bin, 'sync'), `env > ${dumps}/sync.env\nexec /bin/sync "$@"`);
  port = await freePort();
  const common = {
    PATH: `${bin}:${process.env.PATH}`,
    PEER_HOST_TEMPLATE: '127.0.{ordinal}.1',
    BACKUP_PORT: String(port),
    MYSQL_HOST: '127.0.0.1',
    MYSQL_PORT: String(await freePort()),
    MYSQL_USER: 'agent',
    REPLICATION_USER: 'repl',
    ...SECRETS,
  };
  sidecar = start(['sidecar'], {
    ...common,
    POD_NAME: 'mysql-0',
    DATA_DIR: join(base, 'sidecar-data'),
    CONF_DIR: join(base, 'sidecar-conf'),
    BACKUP_BIND: '127.0.0.1',
    XTRABACKUP_BIN: backupTool,
    // A warning of the kind a dependency may emit at any time: it must become a log event too.
    NODE_OPTIONS: "--import=data:text/javascript,setTimeout(()=>process.emitWarning('planted%20by%20the%20test','TestWarning'),500)",
  });
  await waitUntil(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 'the sidecar to serve', 15_000);
  init = start(['init'], {
    ...common,
    POD_NAME: 'mysql-1',
    DATA_DIR: join(base, 'init-data'),
    CONF_DIR: join(base, 'init-conf'),
    CONFIG_MAP_DIR: join(base, 'config-map'),
    CLONE_SOURCE: 'primary',
    CLONE_RETRY_DEADLINE: '0',
    XTRABACKUP_BIN: prepareTool,
    XBSTREAM_BIN: streamTool,
  });
  initCode = await init.closed;
}, 60_000);

afterAll(async () => {
  sidecar?.child.kill('SIGKILL');
  init?.child.kill('SIGKILL');
  if (base) await rm(base, { recursive: true, force: true });
});

describe('the agent as processes', () => {
  it('init cloned through the stand-in tools (the children below all ran)', async () => {
    expect(initCode, init.out.stdout + init.out.stderr).toBe(0);
    expect(await readdir(join(base, 'init-data'))).toContain('mysql');
    expect((await readdir(dumps)).sort()).toEqual(['backup.env', 'extract.env', 'prepare.env', 'sync.env']);
  });

  it('sends every byte of a backup tool that exits at once: 100 backups in a row, each complete', async () => {
    const expected = execFileSync('mbstream', ['-c', ...BACKUP_FILES], { cwd: backupFiles }).length;
    const sizes = new Map<number, number>();
    for (let i = 0; i < 100; i++) {
      const res = await rawGet(`http://127.0.0.1:${port}/backup`, { authorization: `Bearer ${SECRETS.BACKUP_TOKEN}` });
      expect(res.trailers['x-backup-status']).toBe('Success');
      sizes.set(res.bytes, (sizes.get(res.bytes) ?? 0) + 1);
    }
    expect(Object.fromEntries(sizes)).toEqual({ [expected]: 100 });
  });

  it.each(['backup', 'extract', 'prepare', 'sync'])('gives the %s child no secret and nothing it does not need', async (name) => {
    const env = await readDump(name);
    // The backup tool's own password (MYSQL_PWD, below) aside, no secret's value under any name.
    const text = (await readFile(join(dumps, `${name}.env`), 'utf8')).replace(/^MYSQL_PWD=.*$/m, '');
    for (const [variable, value] of Object.entries(SECRETS)) {
      expect(env).not.toHaveProperty(variable);
      expect(text).not.toContain(value);
    }
    // Nor the agent's own configuration: the tool gets its options on its command line.
    for (const variable of ['POD_NAME', 'DATA_DIR', 'BACKUP_PORT', 'MYSQL_USER', 'XTRABACKUP_BIN', 'CLONE_SOURCE', 'NODE_OPTIONS']) expect(env).not.toHaveProperty(variable);
    expect(env.PATH).toContain(join(base, 'bin'));
  });

  it('gives the backup tool its password as MYSQL_PWD, and no other child one', async () => {
    expect((await readDump('backup')).MYSQL_PWD).toBe(SECRETS.MYSQL_PASSWORD);
    for (const name of ['extract', 'prepare', 'sync']) expect(await readDump(name)).not.toHaveProperty('MYSQL_PWD');
  });

  // Last: it stops the sidecar.
  it('writes only JSON log lines on stdout and stderr: the sidecar from start to SIGTERM, and init', async () => {
    // Some more requests the sidecar answers, including a refused one, before it is stopped.
    await fetch(`http://127.0.0.1:${port}/status`);
    await fetch(`http://127.0.0.1:${port}/readyz`);
    await fetch(`http://127.0.0.1:${port}/backup`);
    await waitUntil(() => sidecar.out.stdout.includes('planted by the test'), 'the planted warning');
    sidecar.child.kill('SIGTERM');
    await sidecar.closed;
    expect(sidecar.out.stdout).toContain('"msg":"serving"');
    expect(sidecar.out.stdout).toContain('"msg":"stopped"');
    const warning = sidecar.out.stdout.split('\n').find((l) => l.includes('planted by the test'));
    expect(JSON.parse(warning!)).toMatchObject({ level: 'warn', msg: 'process warning', warning: 'TestWarning', reason: 'planted by the test' });
    for (const text of [sidecar.out.stdout, sidecar.out.stderr, init.out.stdout, init.out.stderr]) {
      expect(nonJsonLines(text)).toEqual([]);
    }
  });
});
