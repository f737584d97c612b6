/**
 * A real S3 store for the tests: Ceph's RADOS Gateway from Debian's packages (radosgw, ceph-mon,
 * ceph-osd), one monitor and one memstore OSD on loopback, all state in one temporary directory,
 * every daemon's PID recorded there. `startRgw` answers once a signed S3 request succeeds with
 * the user it created, or throws with the tail of the daemons' logs; `stop` ends the daemons by
 * their recorded PIDs and removes the directory.
 *
 * Why each ceph.conf line is there (measured on this machine kind, see README "Development"):
 * - auth none everywhere, but `ms mon client mode = crc secure`: radosgw insists on a secure mon
 *   session by default and loops on "get_initial_auth_request returned -13" without it;
 * - `paxos propose interval = 0.05`: radosgw's first start creates its pools, two map epochs
 *   each; at the default 1 s per epoch the start takes ~9 s instead of ~2 s;
 * - `mon data avail warn/crit` low: the monitor stops itself on a nearly full disk otherwise;
 * - memstore: no block file, nothing to mkfs on disk; the data lives in the OSD's memory.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { openSync, closeSync, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { AbortMultipartUploadCommand, CreateBucketCommand, DeleteObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

const execFileP = promisify(execFile);
const DAEMONS = ['rgw', 'osd', 'mon'] as const;
type Daemon = (typeof DAEMONS)[number];

export interface RgwOptions {
  /** radosgw's port on 127.0.0.1 (default 7480). */
  readonly port?: number;
  /** The monitor's port (default 13300); the OSD takes ports from 6800 up. */
  readonly monPort?: number;
  /** Bytes of RAM the memstore OSD may hold (default 4 GiB). */
  readonly memstoreBytes?: number;
}

export interface S3User {
  readonly uid: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface Rgw {
  readonly dir: string;
  readonly endpoint: string;
  readonly region: string;
  readonly user: S3User;
  readonly pids: Readonly<Record<Daemon, number>>;
  /** An SDK client as the agent makes one: path style, checksums only when required (RGW 16). */
  client(user?: S3User): S3Client;
  /** Another S3 user (radosgw-admin user create). */
  createUser(uid: string): Promise<S3User>;
  /** A new bucket owned by the default user. */
  createBucket(name: string): Promise<void>;
  /**
   * Deletes every object and unfinished upload in the bucket and runs RGW's garbage collection, so
   * the memstore gets their bytes back now (a deleted object's tail waits two hours by default):
   * a bench that writes GBs per round stays inside memstoreBytes.
   */
  emptyBucket(name: string): Promise<void>;
  /** The environment the agent reads for this store (the caller adds BACKUP_STORE_URL). */
  env(user?: S3User): Record<string, string>;
  /** SIGKILLs radosgw (the "store killed" fault); `start()` brings it back on the same port. */
  killGateway(): Promise<void>;
  startGateway(): Promise<void>;
  /** Ends every daemon by its recorded PID and removes the state directory. */
  stop(): Promise<void>;
}

/** ceph.conf for one mon, one memstore OSD and radosgw (beast) on loopback. */
export function cephConf(dir: string, fsid: string, o: Required<RgwOptions>): string {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${o.monPort}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
mon cluster log file = ${dir}/log/cluster.log
crash dir = ${dir}/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
[mon]
mon data = ${dir}/mon
paxos propose interval = 0.05
[osd]
osd data = ${dir}/osd
osd objectstore = memstore
memstore device bytes = ${o.memstoreBytes}
[client]
keyring = /dev/null
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${o.port}
rgw data = ${dir}/rgw
`;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie answers kill(0) but is gone.
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z';
  } catch {
    return false;
  }
};

async function stopPid(pid: number, timeoutMs = 5000): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await delay(50);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  while (alive(pid)) await delay(20);
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function tail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).slice(-lines).join('\n');
}

/** Starts the store; throws with the daemons' log tails when it does not answer in time. */
export async function startRgw(options: RgwOptions = {}): Promise<Rgw> {
  const o: Required<RgwOptions> = { port: 7480, monPort: 13300, memstoreBytes: 4 * 1024 ** 3, ...options };
  for (const bin of ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'monmaptool', 'ceph']) {
    await execFileP('sh', ['-c', `command -v ${bin}`]).catch(() => {
      throw new Error(`${bin} is not installed: run test/ensure-prereqs.sh (apt-get install radosgw ceph-mon ceph-osd)`);
    });
  }
  for (const port of [o.port, o.monPort]) {
    if (await portInUse(port)) throw new Error(`127.0.0.1:${port} is already in use: another store (or a leftover one) runs; stop it first`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'mysql-agent-rgw-'));
  for (const d of ['mon', 'osd', 'run', 'log', 'rgw', 'crash']) await mkdir(join(dir, d), { recursive: true });
  const conf = join(dir, 'ceph.conf');
  const fsid = randomUUID();
  await writeFile(conf, cephConf(dir, fsid, o));
  const env = { ...process.env, CEPH_CONF: conf };
  const ceph = (cmd: string, args: string[], timeoutMs = 30_000) => execFileP(cmd, args, { env, timeout: timeoutMs, killSignal: 'SIGKILL' });
  const pids: Partial<Record<Daemon, number>> = {};
  const children: ChildProcess[] = [];

  // A test process that dies without stop() must not leave daemons behind.
  const onExit = () => {
    for (const name of DAEMONS) if (pids[name] !== undefined && alive(pids[name]!)) process.kill(pids[name]!, 'SIGKILL');
  };
  process.once('exit', onExit);
  const daemon = async (name: Daemon, cmd: string, args: string[]) => {
    const out = openSync(join(dir, 'log', `${name}.stdout`), 'a');
    const child = spawn(cmd, ['-f', ...args], { env, stdio: ['ignore', out, out] });
    closeSync(out);
    children.push(child);
    pids[name] = child.pid!;
    await writeFile(join(dir, `${name}.pid`), `${child.pid}\n`);
  };
  const stopAll = async () => {
    process.removeListener('exit', onExit);
    for (const name of DAEMONS) {
      const file = join(dir, `${name}.pid`);
      if (existsSync(file)) await stopPid(Number(readFileSync(file, 'utf8')));
    }
  };
  const fail = async (what: string, err?: unknown): Promise<never> => {
    const logs = [];
    for (const f of ['mon.a.log', 'osd.0.log', 'client.rgw.log', 'mon.stdout', 'osd.stdout', 'rgw.stdout']) {
      const t = await tail(join(dir, 'log', f), 8);
      if (t) logs.push(`--- ${f}\n${t}`);
    }
    await stopAll();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`Ceph RGW did not start: ${what}${err ? ` (${(err as Error).message})` : ''}\n${logs.join('\n')}`);
  };
  const until = async (what: string, probe: () => Promise<boolean>, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await probe().catch(() => false)) return;
      for (const name of DAEMONS) if (pids[name] !== undefined && !alive(pids[name]!)) return fail(`${name} exited while waiting for ${what}`);
      await delay(100);
    }
    return fail(`no ${what} within ${timeoutMs / 1000} s`);
  };

  let osdUp: RegExp;
  try {
    await ceph('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${o.monPort}]`, join(dir, 'monmap')]);
    await ceph('ceph-mon', ['--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap')]);
    await daemon('mon', 'ceph-mon', ['-i', 'a']);
    const osdUuid = randomUUID();
    // `ceph osd new` also waits for the monitor to answer.
    const osdId = (await ceph('ceph', ['osd', 'new', osdUuid], 60_000)).stdout.trim();
    await ceph('ceph-osd', ['-i', osdId, '--mkfs', '--osd-uuid', osdUuid]);
    await daemon('osd', 'ceph-osd', ['-i', osdId]);
    osdUp = new RegExp(`^osd\\.${osdId} up`, 'm');
  } catch (err) {
    return fail('monitor or OSD setup failed', err);
  }
  await until('OSD up', async () => osdUp.test((await ceph('ceph', ['osd', 'dump'], 10_000)).stdout), 60_000);

  const startGateway = async () => {
    await daemon('rgw', 'radosgw', ['-n', 'client.rgw']);
    await until(`radosgw answering on 127.0.0.1:${o.port}`, () => portInUse(o.port), 60_000);
  };
  await startGateway();
  const createUser = async (uid: string): Promise<S3User> => {
    const user = { uid, accessKeyId: `ak-${uid}-${randomUUID().slice(0, 8)}`, secretAccessKey: randomUUID() };
    await ceph('radosgw-admin', ['user', 'create', `--uid=${uid}`, `--display-name=${uid}`, `--access-key=${user.accessKeyId}`, `--secret-key=${user.secretAccessKey}`]);
    return user;
  };
  let user: S3User;
  try {
    user = await createUser('test');
  } catch (err) {
    return fail('radosgw-admin user create failed', err);
  }
  const endpoint = `http://127.0.0.1:${o.port}`;
  const region = 'us-east-1';
  const client = (u: S3User = user) =>
    new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId: u.accessKeyId, secretAccessKey: u.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  // Ready when a signed request succeeds: the user's keys reach the gateway a moment after creation.
  const probe = client();
  await until(
    'a signed S3 request to succeed',
    async () => {
      await probe.send(new CreateBucketCommand({ Bucket: 'readiness-probe' }));
      return true;
    },
    30_000,
  );
  probe.destroy();

  return {
    dir,
    endpoint,
    region,
    user,
    get pids() {
      return pids as Record<Daemon, number>;
    },
    client,
    createUser,
    emptyBucket: async (name) => {
      const c = client();
      try {
        let token: string | undefined;
        do {
          const page = await c.send(new ListObjectsV2Command({ Bucket: name, ContinuationToken: token }));
          for (const o of page.Contents ?? []) await c.send(new DeleteObjectCommand({ Bucket: name, Key: o.Key! }));
          token = page.NextContinuationToken;
        } while (token);
        for (const u of (await c.send(new ListMultipartUploadsCommand({ Bucket: name }))).Uploads ?? []) {
          await c.send(new AbortMultipartUploadCommand({ Bucket: name, Key: u.Key!, UploadId: u.UploadId! }));
        }
      } finally {
        c.destroy();
      }
      await ceph('radosgw-admin', ['gc', 'process', '--include-all'], 120_000);
    },
    createBucket: async (name) => {
      const c = client();
      try {
        await c.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        c.destroy();
      }
    },
    env: (u = user) => ({ S3_ENDPOINT: endpoint, S3_REGION: region, AWS_ACCESS_KEY_ID: u.accessKeyId, AWS_SECRET_ACCESS_KEY: u.secretAccessKey }),
    killGateway: async () => {
      const pid = pids.rgw!;
      process.kill(pid, 'SIGKILL');
      while (alive(pid)) await delay(20);
    },
    startGateway,
    stop: async () => {
      await stopAll();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
