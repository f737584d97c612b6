/**
 * The local rig: N MariaDB nodes on this machine, each started the way a StatefulSet pod is —
 * `mysql-agent init`, then mariadbd with the written config, then `mysql-agent sidecar` —
 * node N on its own loopback address (PREFIX + N, e.g. 127.0.0.12) with its own directories.
 * Node 0's first start initialises a datadir with a replication and a backup/agent account,
 * like a server image's entrypoint would.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { tlsGet } from '../tls/client.js';

const execFileP = promisify(execFile);
export const REPO = resolve(import.meta.dirname, '../..');
/** How an agent process is started: `hostsFile` is bind-mounted over /etc/hosts in its own mount namespace; `cli` another build. */
export interface SpawnOptions {
  readonly hostsFile?: string;
  /** Another build of the agent (its cli.js): an older release, for interoperation. */
  readonly cli?: string;
  /** A network namespace of the run's own to run it in (`ip netns exec`: the pid stays the agent's). */
  readonly netns?: string;
}

export const AGENT_CLI = join(REPO, 'dist/cli.js');
const ROLE_CONFIGS = join(REPO, 'manifests/mariadb');

export interface RigOptions {
  /** Where node directories go; wiped by `destroy()`. */
  readonly baseDir: string;
  /** Loopback prefix: node N listens on `${ipPrefix}${N}` (default 127.0.0.1 → 127.0.0.10, .11, …). */
  readonly ipPrefix?: string;
  readonly token?: string;
  /** Extra environment for every agent process (e.g. CLONE_RETRY_DEADLINE). */
  readonly agentEnv?: Record<string, string>;
  readonly log?: (line: string) => void;
  /**
   * Node N's TLS_DIR (tls.crt, tls.key, ca.crt, e.g. from test/tls/pki.ts): its agent serves and
   * fetches over TLS, and its server gets ssl_cert, ssl_key and ssl_ca from the same files.
   */
  readonly tlsDirOf?: (ordinal: number) => string;
  /** Node N's network namespace (one the run created, test/bench/netns.ts): its server and agents run there. */
  readonly netnsOf?: (ordinal: number) => string | undefined;
  /** Another build of the agent for some nodes (ordinal → its cli.js): an older release, for interoperation. */
  readonly agentCli?: Readonly<Record<number, string>>;
}

export const CREDENTIALS = {
  root: 'rig-root-pw',
  replicationUser: 'repl',
  replication: 'rig-repl-pw',
  agentUser: 'agent',
  agent: 'rig-agent-pw',
};

export interface AgentRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly lines: Record<string, unknown>[];
  readonly stderr: string;
}

/** The log lines (parsed pino JSON) an agent process wrote. */
function parseLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export class RigNode {
  readonly ip: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly confDir: string;
  readonly configMapDir: string;
  readonly socket: string;
  server: ChildProcess | null = null;
  sidecar: ChildProcess | null = null;
  sidecarOutput = '';

  constructor(
    readonly rig: Rig,
    readonly ordinal: number,
  ) {
    this.ip = `${rig.ipPrefix}${ordinal}`;
    this.dir = join(rig.options.baseDir, `node-${ordinal}`);
    this.dataDir = join(this.dir, 'data');
    this.confDir = join(this.dir, 'conf.d');
    this.configMapDir = join(this.dir, 'config-map');
    this.socket = join(this.dir, 'mysqld.sock');
  }

  get tlsDir(): string | null {
    return this.rig.options.tlsDirOf?.(this.ordinal) ?? null;
  }

  get netns(): string | undefined {
    return this.rig.options.netnsOf?.(this.ordinal);
  }

  /** How this node's agent processes are started: its build, its namespace. */
  private get spawning(): SpawnOptions {
    return { cli: this.cli, ...(this.netns ? { netns: this.netns } : {}) };
  }

  /** The build of the agent this node runs. */
  get cli(): string {
    return this.rig.options.agentCli?.[this.ordinal] ?? AGENT_CLI;
  }

  get podName(): string {
    return `mysql-${this.ordinal}`;
  }

  /** The environment a pod's containers would get from the StatefulSet. */
  agentEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      POD_NAME: this.podName,
      CONFIG_MAP_DIR: this.configMapDir,
      CONF_DIR: this.confDir,
      DATA_DIR: this.dataDir,
      PEER_HOST_TEMPLATE: `${this.rig.ipPrefix}{ordinal}`,
      MYSQL_HOST: this.ip,
      MYSQL_USER: CREDENTIALS.agentUser,
      MYSQL_PASSWORD: CREDENTIALS.agent,
      REPLICATION_USER: CREDENTIALS.replicationUser,
      REPLICATION_PASSWORD: CREDENTIALS.replication,
      BACKUP_BIND: this.ip,
      BACKUP_TOKEN: this.rig.token,
      CLONE_RETRY_DEADLINE: '60',
      CLONE_RETRY_MAX_DELAY: '2',
      // The rig is not in a container: keep the backup tool off /etc/mysql.
      XTRABACKUP_ARGS: `--defaults-file=${join(this.dir, 'my.cnf')}`,
      // Nor in Kubernetes: no API holds the replicas' claims; only the agents' answers count.
      VOLUME_CLAIMS: 'none',
      ...(this.tlsDir ? { TLS_DIR: this.tlsDir } : {}),
      ...this.rig.options.agentEnv,
      ...extra,
    };
  }

  async prepareDirs(): Promise<void> {
    await mkdir(this.dataDir, { recursive: true });
    await mkdir(this.confDir, { recursive: true });
    await mkdir(this.configMapDir, { recursive: true });
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    for (const f of ['primary.cnf', 'replica.cnf']) await copyFile(join(ROLE_CONFIGS, f), join(this.configMapDir, f));
    const asRoot = process.getuid?.() === 0;
    await writeFile(
      join(this.dir, 'my.cnf'),
      [
        '[mysqld]',
        ...(asRoot ? ['user=root'] : []),
        `datadir=${this.dataDir}`,
        `socket=${this.socket}`,
        `pid-file=${join(this.dir, 'mysqld.pid')}`,
        `log-error=${join(this.dir, 'mysqld.err')}`,
        // Its own temp dir: a shared /tmp is cleaned by other processes mid-query.
        `tmpdir=${join(this.dir, 'tmp')}`,
        `bind-address=${this.ip}`,
        'port=3306',
        'skip-name-resolve',
        'innodb_buffer_pool_size=64M',
        'innodb_log_file_size=32M',
        ...(this.tlsDir ? [`ssl_cert=${join(this.tlsDir, 'tls.crt')}`, `ssl_key=${join(this.tlsDir, 'tls.key')}`, `ssl_ca=${join(this.tlsDir, 'ca.crt')}`] : []),
        `!includedir ${this.confDir}`,
        '',
      ].join('\n'),
    );
  }

  /**
   * Runs `mysql-agent init` to completion, as the init container does; with `hostsFile`, in a
   * mount namespace of its own where that file is /etc/hosts (the machine's is never touched).
   */
  async init(extra: Record<string, string> = {}, options: SpawnOptions = {}): Promise<AgentRun> {
    await this.prepareDirs();
    return this.rig.runAgent(['init'], this.agentEnv(extra), join(this.dir, 'init.log'), { ...this.spawning, ...options });
  }

  /** Spawns `mysql-agent init` without waiting (for tests that interrupt it). */
  spawnInit(extra: Record<string, string> = {}): ChildProcess {
    return this.rig.spawnAgent(['init'], this.agentEnv(extra), join(this.dir, 'init.log'), this.spawning);
  }

  async startServer(): Promise<void> {
    const fresh = !existsSync(join(this.dataDir, 'mysql'));
    if (fresh && this.ordinal !== 0) throw new Error(`node ${this.ordinal}: datadir not initialised (init did not clone)`);
    if (fresh) {
      await execFileP('mariadb-install-db', [`--defaults-file=${join(this.dir, 'my.cnf')}`, '--auth-root-authentication-method=normal', '--skip-test-db']);
    }
    const server = ['mariadbd', `--defaults-file=${join(this.dir, 'my.cnf')}`];
    const [program, ...args] = this.netns ? ['ip', 'netns', 'exec', this.netns, ...server] : server;
    this.server = spawn(program!, args, { stdio: 'ignore' });
    this.rig.track(this.server);
    await this.waitForServer();
    if (fresh) await this.bootstrapPrimary();
  }

  private async waitForServer(): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (this.server?.exitCode !== null) break;
      try {
        const c = await mysql.createConnection({ socketPath: this.socket, user: 'root', password: this.rootPassword() });
        await c.end();
        return;
      } catch {
        await delay(200);
      }
    }
    const err = await readFile(join(this.dir, 'mysqld.err'), 'utf8').catch(() => '');
    throw new Error(`node ${this.ordinal}: mariadbd did not come up: ${err.split('\n').slice(-8).join('\n')}`);
  }

  private rootPassword(): string {
    return existsSync(join(this.dir, '.root-password-set')) || this.ordinal !== 0 ? CREDENTIALS.root : '';
  }

  /** What the server image's entrypoint does on first start: accounts from the Secret, no empty passwords. */
  private async bootstrapPrimary(): Promise<void> {
    const c = await mysql.createConnection({ socketPath: this.socket, user: 'root', password: '' });
    try {
      await c.query(`ALTER USER root@localhost IDENTIFIED BY ?`, [CREDENTIALS.root]);
      await c.query(`DELETE FROM mysql.global_priv WHERE User = ''`);
      await c.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [CREDENTIALS.replicationUser, CREDENTIALS.replication]);
      await c.query(`GRANT REPLICATION SLAVE ON *.* TO ?@'%'`, [CREDENTIALS.replicationUser]);
      // The agents connect from the node's address: loopback, or a namespace's link (test/bench/netns.ts).
      const agentHost = this.ip.startsWith('127.') ? '127.0.0.%' : this.ip.replace(/\.\d+$/, '.%');
      await c.query(`CREATE USER ?@? IDENTIFIED BY ?`, [CREDENTIALS.agentUser, agentHost, CREDENTIALS.agent]);
      await c.query(
        `GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN, READ_ONLY ADMIN, REPLICATION MASTER ADMIN ON *.* TO ?@?`,
        [CREDENTIALS.agentUser, agentHost],
      );
      await c.query('FLUSH PRIVILEGES');
    } finally {
      await c.end();
    }
    await writeFile(join(this.dir, '.root-password-set'), '');
  }

  async stopServer(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.rig.stop(this.server, signal, 60_000);
    this.server = null;
  }

  startSidecar(extra: Record<string, string> = {}): ChildProcess {
    this.sidecarOutput = '';
    const child = this.rig.spawnAgent(['sidecar'], this.agentEnv(extra), join(this.dir, 'sidecar.log'), this.spawning);
    child.stdout!.on('data', (d: Buffer) => (this.sidecarOutput += d.toString()));
    this.sidecar = child;
    return child;
  }

  async stopSidecar(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.sidecar;
    this.sidecar = null;
    await this.rig.stop(child, signal, 15_000);
    return { code: child?.exitCode ?? null, signal: child?.signalCode ?? null };
  }

  sidecarLines(): Record<string, unknown>[] {
    return parseLines(this.sidecarOutput);
  }

  url(path: string): string {
    return `${this.tlsDir ? 'https' : 'http'}://${this.ip}:3307${path}`;
  }

  async http(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(this.url(path), init);
  }

  /** Waits until GET path answers 200 (e.g. /healthz, /readyz). */
  async waitFor(path: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    const tlsDir = this.tlsDir;
    while (Date.now() < deadline) {
      try {
        // fetch takes no CA of its own: over TLS, node:https.
        const ok = tlsDir
          ? await tlsGet(this.url(path), { ca: join(tlsDir, 'ca.crt') }).then((res) => ((last = `${res.status} ${res.error ?? ''}`), res.status === 200))
          : await this.http(path).then(async (res) => ((last = `${res.status} ${await res.text()}`), res.ok));
        if (ok) return;
      } catch (err) {
        last = String(err);
      }
      await delay(100);
    }
    throw new Error(`node ${this.ordinal}: ${path} not OK after ${timeoutMs} ms: ${last}`);
  }

  /** Runs SQL as root over the node's socket. */
  async sql<T = Record<string, unknown>>(query: string, values: unknown[] = []): Promise<T[]> {
    const c = await mysql.createConnection({ socketPath: this.socket, user: 'root', password: CREDENTIALS.root });
    try {
      const [rows] = await c.query(query, values);
      return (Array.isArray(rows) ? rows : []) as T[];
    } finally {
      await c.end();
    }
  }

  async replicaStatus(): Promise<Record<string, unknown> | undefined> {
    return (await this.sql('SHOW SLAVE STATUS'))[0];
  }

  /** Brings the node up the way a pod starts: init, server, sidecar (ready). */
  async up(): Promise<AgentRun> {
    const run = await this.init();
    if (run.code !== 0) throw new Error(`node ${this.ordinal}: init exited ${run.code}: ${JSON.stringify(run.lines.at(-1))} ${run.stderr}`);
    await this.startServer();
    this.startSidecar();
    await this.waitFor('/readyz');
    return run;
  }

  async down(): Promise<void> {
    await this.stopSidecar();
    await this.stopServer();
  }
}

export class Rig {
  readonly ipPrefix: string;
  readonly token: string;
  readonly nodes: RigNode[] = [];
  private readonly children = new Set<ChildProcess>();

  constructor(readonly options: RigOptions) {
    this.ipPrefix = options.ipPrefix ?? '127.0.0.1';
    this.token = options.token ?? 'rig-token-0123456789abcdef';
    process.once('exit', () => {
      for (const c of this.children) c.kill('SIGKILL');
    });
  }

  node(ordinal: number): RigNode {
    this.nodes[ordinal] ??= new RigNode(this, ordinal);
    return this.nodes[ordinal];
  }

  track(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }

  spawnAgent(args: string[], env: NodeJS.ProcessEnv, logFile: string, options: SpawnOptions = {}): ChildProcess {
    // This build runs as the image runs it, through its own `#!` line (its node options with it);
    // another build with this test's node.
    const cli = options.cli ?? AGENT_CLI;
    const agent = cli === AGENT_CLI ? [AGENT_CLI, ...args] : [process.execPath, cli, ...args];
    const command = options.netns ? ['ip', 'netns', 'exec', options.netns, ...agent] : agent;
    // unshare and sh exec into node: the child's pid is the agent's, signals reach it directly.
    const [program, ...argv] = options.hostsFile
      ? ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', options.hostsFile, ...command]
      : command;
    const child = spawn(program!, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.track(child);
    const file = createWriteStream(logFile, { flags: 'a' });
    child.stdout!.on('data', (d: Buffer) => {
      file.write(d);
      this.options.log?.(d.toString().trimEnd());
    });
    child.stderr!.on('data', (d: Buffer) => file.write(d));
    child.once('close', () => file.end());
    return child;
  }

  runAgent(args: string[], env: NodeJS.ProcessEnv, logFile: string, options: SpawnOptions = {}): Promise<AgentRun> {
    const child = this.spawnAgent(args, env, logFile, options);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise((resolveRun) =>
      child.once('close', (code, signal) => resolveRun({ code, signal, lines: parseLines(out), stderr: err })),
    );
  }

  async stop(child: ChildProcess | null, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }

  /** Brings up nodes 0..count-1 in order, each cloning from the one before, as the StatefulSet does. */
  async up(count: number): Promise<void> {
    for (let n = 0; n < count; n++) await this.node(n).up();
  }

  async down(): Promise<void> {
    for (const node of [...this.nodes].reverse()) if (node) await node.down();
  }

  async destroy(): Promise<void> {
    await this.down();
    for (const c of this.children) c.kill('SIGKILL');
    await rm(this.options.baseDir, { recursive: true, force: true });
  }
}
