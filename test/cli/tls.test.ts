/**
 * TLS on the agent's port, with the built CLI as processes and certificates the run makes
 * (test/tls/pki.ts): the sidecar serves HTTPS only (plain HTTP gets nothing), /backup only to a
 * client certificate of its CA with TLS_CLIENT_AUTH=require (no backup tool started otherwise),
 * the bare-xbstream upgrade too; renewed files served without a restart while a backup in flight
 * keeps its connection; init clones over TLS (upgraded, raw or zstd), and refuses an unknown CA,
 * an expired certificate, a name mismatch and a peer without TLS with the cause, leaving nothing
 * in its datadir; status asks over TLS. The
 * sidecar is ordinal 0 without a MySQL server (it serves while it waits for one); its backup
 * tool is a stand-in streaming a real xbstream.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { type Server as HttpServer, createServer as createHttpServer } from 'node:http';
import { type Server, createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { type AddressInfo, connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, script, waitUntil } from '../rig/helpers.js';
import { tlsGet } from '../tls/client.js';
import { type Pki, createPki } from '../tls/pki.js';
import { STATUS_FILE, STREAM_UPGRADE } from '../../agent/stream/protocol.js';

const CLI = join(import.meta.dirname, '../../dist/cli.js');
const TOKEN = 'tls-test-token-0123456789abcdef';
const BACKUP_FILES = ['backup-my.cnf', 'mysql/db.opt', 'xtrabackup_binlog_info', 'xtrabackup_info', 'xtrabackup_checkpoints'];

let base: string;
let pki: Pki;
let port: number;
/** The sidecar's TLS_DIR: copies, so that a test can renew them in place. */
let served: string;
let dirs: Record<'node1' | 'client' | 'foreignClient' | 'trustsOther' | 'expired' | 'mismatch' | 'renewed' | 'node0' | 'foreignNode1', string>;
let sidecar: { child: ChildProcess; stdout: string };
let runsFile: string;
let slowFile: string;

async function copyTlsDir(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  // As the kubelet swaps a Secret's files: each one replaced whole.
  for (const f of ['ca.crt', 'tls.key', 'tls.crt']) {
    await copyFile(join(from, f), join(to, `.${f}.new`));
    await rm(join(to, f), { force: true });
    await copyFile(join(to, `.${f}.new`), join(to, f));
    await rm(join(to, `.${f}.new`));
  }
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out })));
}

let initCount = 0;
/** Runs init as ordinal 1 into a fresh datadir; returns its exit code, output and what the datadir holds. */
async function init(env: Record<string, string>): Promise<{ code: number | null; out: string; entries: string[] }> {
  const n = ++initCount;
  const dataDir = join(base, `init-${n}`, 'data');
  await mkdir(dataDir, { recursive: true });
  await mkdir(join(base, `init-${n}`, 'conf'), { recursive: true });
  const r = await run(['init'], {
    PATH: process.env.PATH,
    POD_NAME: 'mysql-1',
    DATA_DIR: dataDir,
    CONF_DIR: join(base, `init-${n}`, 'conf'),
    CONFIG_MAP_DIR: join(base, 'config-map'),
    PEER_HOST_TEMPLATE: '127.0.{ordinal}.1',
    BACKUP_PORT: String(port),
    BACKUP_TOKEN: TOKEN,
    CLONE_SOURCE: 'primary',
    CLONE_RETRY_DEADLINE: '0',
    XTRABACKUP_BIN: join(base, 'fake-prepare'),
    XBSTREAM_BIN: 'mbstream',
    ...env,
  });
  return { ...r, entries: await readdir(dataDir) };
}

const backupRuns = async () => (await readFile(runsFile, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
const url = (path: string) => `https://127.0.0.1:${port}${path}`;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'mysql-agent-cli-tls-'));
  pki = await createPki();
  const node0 = await pki.issue({ name: 'node0', ips: ['127.0.0.1'], dns: ['mysql-0.mysql'] });
  dirs = {
    node0,
    node1: await pki.issue({ name: 'node1', ips: ['127.0.1.1'], dns: ['mysql-1.mysql'] }),
    client: await pki.issue({ name: 'client' }),
    foreignClient: await pki.issue({ name: 'foreign-client', signer: 'other-ca' }),
    foreignNode1: await pki.issue({ name: 'foreign-node1', ips: ['127.0.1.1'], signer: 'other-ca' }),
    trustsOther: await pki.issue({ name: 'trusts-other', ips: ['127.0.1.1'], trusts: 'other-ca' }),
    expired: await pki.issue({ name: 'expired', ips: ['127.0.0.1'], expired: true }),
    mismatch: await pki.issue({ name: 'mismatch', ips: ['127.0.0.2'], dns: ['mysql-2.mysql'] }),
    renewed: await pki.issue({ name: 'node0-renewed', ips: ['127.0.0.1'], dns: ['mysql-0.mysql'] }),
  };
  served = join(base, 'served-tls');
  await copyTlsDir(node0, served);
  const files = join(base, 'backup-files');
  await mkdir(join(files, 'mysql'), { recursive: true });
  for (const f of BACKUP_FILES) await writeFile(join(files, f), `${f}\n`);
  await mkdir(join(base, 'config-map'));
  await writeFile(join(base, 'config-map', 'primary.cnf'), '[mysqld]\nlog-bin\n');
  await writeFile(join(base, 'config-map', 'replica.cnf'), '[mysqld]\nread-only=1\n');
  runsFile = join(base, 'backup-runs');
  slowFile = join(base, 'slow');
  // Every start of the backup tool is counted; with `slow` present it holds the stream open.
  const tool = await script(join(base, 'fake-backup'), `echo started >> ${runsFile}\ncd ${files} && mbstream -c ${BACKUP_FILES.join(' ')}\n[ -f ${slowFile} ] && sleep 8\nexit 0`);
  await script(join(base, 'fake-prepare'), 'exit 0');
  port = await freePort();
  const child = spawn(process.execPath, [CLI, 'sidecar'], {
    env: {
      PATH: process.env.PATH,
      POD_NAME: 'mysql-0',
      DATA_DIR: join(base, 'sidecar-data'),
      CONF_DIR: join(base, 'sidecar-conf'),
      BACKUP_BIND: '127.0.0.1',
      BACKUP_PORT: String(port),
      BACKUP_TOKEN: TOKEN,
      MYSQL_HOST: '127.0.0.1',
      MYSQL_PORT: String(await freePort()),
      XTRABACKUP_BIN: tool,
      TLS_DIR: served,
      TLS_CLIENT_AUTH: 'require',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  sidecar = { child, stdout: '' };
  child.stdout!.on('data', (d: Buffer) => (sidecar.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (sidecar.stdout += d.toString()));
  await waitUntil(async () => (await tlsGet(url('/healthz'), { ca: pki.caCert })).status === 200, 'the sidecar to serve HTTPS', 15_000);
}, 60_000);

afterAll(async () => {
  sidecar?.child.kill('SIGKILL');
  await pki?.destroy();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('the sidecar with TLS_DIR', () => {
  it('answers plain HTTP with nothing: no status line, no body', async () => {
    const received = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('GET /status HTTP/1.1\r\nHost: x\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => (text += d.toString('latin1')));
      socket.on('close', () => resolve(text));
      socket.on('error', () => {});
    });
    expect(received).not.toContain('HTTP/');
    expect(received).not.toContain('role');
    const viaFetch = await fetch(`http://127.0.0.1:${port}/status`).then((r) => r.status, (e: Error) => e.message);
    expect(viaFetch).toBe('fetch failed');
  });

  it('serves /healthz and /status over HTTPS to a client without a certificate (the kubelet has none)', async () => {
    expect((await tlsGet(url('/healthz'), { ca: pki.caCert })).status).toBe(200);
    expect((await tlsGet(url('/status'), { ca: pki.caCert })).status).toBe(200);
  });

  it('refuses /backup (GET and HEAD) without a client certificate of its CA, before any backup tool starts', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    for (const method of ['GET', 'HEAD']) {
      expect((await tlsGet(url('/backup'), { ca: pki.caCert }, { headers: auth, method })).status).toBe(403);
      expect((await tlsGet(url('/backup'), { ca: pki.caCert, client: dirs.foreignClient }, { headers: auth, method })).status).toBe(403);
    }
    // The token still applies to a client with a good certificate.
    expect((await tlsGet(url('/backup'), { ca: pki.caCert, client: dirs.client })).status).toBe(401);
    expect(await backupRuns()).toBe(0);
    expect(sidecar.stdout).toContain('no client certificate');
    const ok = await tlsGet(url('/backup'), { ca: pki.caCert, client: dirs.client }, { headers: auth });
    expect(ok.status).toBe(200);
    expect(ok.trailers['x-backup-status']).toBe('Success');
    expect(await backupRuns()).toBe(1);
  });
});

describe('the bare-xbstream upgrade with TLS_DIR', () => {
  /** An upgraded GET over TLS, as init sends it, with or without the client certificate; what came back, whole. */
  const upgradedGet = (withCertificate: boolean) =>
    new Promise<Buffer>((resolve, reject) => {
      const own = withCertificate ? { cert: readFileSync(join(dirs.client, 'tls.crt')), key: readFileSync(join(dirs.client, 'tls.key')) } : {};
      const socket = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(pki.caCert), ...own }, () =>
        socket.write(`GET /backup HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: ${STREAM_UPGRADE}\r\nauthorization: Bearer ${TOKEN}\r\n\r\n`),
      );
      const parts: Buffer[] = [];
      socket.on('data', (d: Buffer) => parts.push(d));
      socket.on('close', () => resolve(Buffer.concat(parts)));
      socket.on('error', reject);
    });

  it('is offered over TLS too, and an upgraded GET without a client certificate gets 403, starting no backup', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const head = await tlsGet(url('/backup'), { ca: pki.caCert, client: dirs.client }, { headers: auth, method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['x-backup-upgrades']).toBe(STREAM_UPGRADE);
    expect(head.headers['x-backup-encodings']).toBe('zstd');
    const before = await backupRuns();
    const answer = (await upgradedGet(false)).toString();
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toContain('no client certificate: TLS_CLIENT_AUTH=require');
    expect(await backupRuns()).toBe(before);
  });

  it('with a client certificate, streams the bare xbstream over TLS, ending in the verdict file', async () => {
    const before = await backupRuns();
    const answer = await upgradedGet(true);
    const headEnd = answer.indexOf('\r\n\r\n');
    expect(answer.subarray(0, headEnd).toString()).toMatch(/^HTTP\/1\.1 101 /);
    const body = answer.subarray(headEnd + 4);
    expect(body.subarray(0, 8).toString()).toBe('XBSTCK01');
    // The verdict file is the last: its payload, then its end chunk.
    expect(body.toString('latin1')).toMatch(new RegExp(`${STATUS_FILE}[^]{4,40}Success \\d+\\n`));
    expect(body.toString('latin1').endsWith(`E${String.fromCharCode(STATUS_FILE.length)}\0\0\0${STATUS_FILE}`)).toBe(true);
    expect(await backupRuns()).toBe(before + 1);
  });
});

describe('init with TLS_DIR', () => {
  it("reads the peers' /status over TLS (CLONE_SOURCE=auto)", async () => {
    const r = await init({ TLS_DIR: dirs.node1, CLONE_SOURCE: 'auto' });
    // The primary answered over TLS, with its reason: its server (absent here) does not answer.
    expect(r.out).toContain('"reason":"primary not ready: local server does not answer');
  });

  it('clones over TLS on the upgraded framing, presenting its own certificate', async () => {
    const before = await backupRuns();
    const r = await init({ TLS_DIR: dirs.node1 });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/"framing":"mysql-agent-xbstream","compression":"none"/);
    expect(r.entries).toContain('mysql');
    expect(await backupRuns()).toBe(before + 1);
  });

  it('clones over TLS compressed with CLONE_COMPRESSION=zstd, decompressed here', async () => {
    const r = await init({ TLS_DIR: dirs.node1, CLONE_COMPRESSION: 'zstd' });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/"framing":"mysql-agent-xbstream","compression":"zstd"/);
    expect(r.entries).toContain('mysql');
  });

  it('trusting another CA: refuses the peer as an unknown CA, not retried, nothing in the datadir', async () => {
    const r = await init({ TLS_DIR: dirs.trustsOther, CLONE_SOURCE: '127.0.0.1', CLONE_RETRY_DEADLINE: '30' });
    expect(r.code).toBe(1);
    expect(r.out).not.toContain('retrying');
    expect(r.out).toContain('unknown CA');
    expect(r.out).toContain('every pod must mount a Certificate of the same issuer in TLS_DIR');
    expect(r.entries).toEqual([]);
  });

  it('with a certificate of another CA: the peer refuses /backup (403), named, no backup tool started, nothing in the datadir', async () => {
    const before = await backupRuns();
    const r = await init({ TLS_DIR: dirs.foreignNode1, CLONE_RETRY_DEADLINE: '30' });
    expect(r.code).toBe(1);
    expect(r.out).toContain('requires a client certificate of its CA (HTTP 403, TLS_CLIENT_AUTH=require)');
    expect(r.out).not.toContain('retrying');
    expect(r.entries).toEqual([]);
    expect(await backupRuns()).toBe(before);
  });

  const peerServing = async (tlsDir: string): Promise<Server> => {
    const server = createServer({ cert: await readFile(join(tlsDir, 'tls.crt')), key: await readFile(join(tlsDir, 'tls.key')) }, (_req, res) => res.end('{}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return server;
  };

  it.each([
    ['expired', 'its certificate has expired (CERT_HAS_EXPIRED)'],
    ['mismatch', "its certificate is not for this name (name mismatch: IP: 127.0.0.1 is not in the cert's list: 127.0.0.2)"],
  ] as const)('refuses a peer with an %s certificate, naming the cause, not retried, nothing in the datadir', async (which, cause) => {
    const peer = await peerServing(dirs[which]);
    try {
      const r = await init({ TLS_DIR: dirs.node1, CLONE_SOURCE: '127.0.0.1', BACKUP_PORT: String((peer.address() as AddressInfo).port), CLONE_RETRY_DEADLINE: '30' });
      expect(r.code).toBe(1);
      expect(r.out).toContain(`TLS to peer 127.0.0.1:${(peer.address() as AddressInfo).port} failed: ${cause}`);
      expect(r.out).not.toContain('retrying');
      expect(r.entries).toEqual([]);
    } finally {
      peer.close();
    }
  });

  it('refuses a peer without TLS, naming it', async () => {
    const plain: HttpServer = createHttpServer((_req, res) => res.end('{}'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const r = await init({ TLS_DIR: dirs.node1, CLONE_SOURCE: '127.0.0.1', BACKUP_PORT: String((plain.address() as AddressInfo).port) });
      expect(r.code).toBe(1);
      expect(r.out).toContain('it does not speak TLS');
      expect(r.entries).toEqual([]);
    } finally {
      plain.close();
    }
  });
});

describe("ordinal 0's guard with TLS_DIR", () => {
  /** A replica's agent that holds data, over TLS with the given certificate, at 127.0.1.1. */
  const replicaServing = async (tlsDir: string, asked: string[]): Promise<Server> => {
    const server = createServer({ cert: await readFile(join(tlsDir, 'tls.crt')), key: await readFile(join(tlsDir, 'tls.key')) }, (req, res) => {
      asked.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ pod: 'mysql-1', ordinal: 1, role: 'replica', ready: true, holds_data: true, gtid_executed: '0-100-5' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.1.1', r));
    return server;
  };
  const guard = (peer: Server) =>
    init({ POD_NAME: 'mysql-0', TLS_DIR: dirs.node0, VOLUME_CLAIMS: 'none', PEER_PROBE_COUNT: '1', BACKUP_PORT: String((peer.address() as AddressInfo).port) });

  it('asks the replicas over TLS and refuses to start empty over one that holds data', async () => {
    const asked: string[] = [];
    const peer = await replicaServing(dirs.node1, asked);
    try {
      const r = await guard(peer);
      expect(asked).toEqual(['/status?fresh=1']);
      expect(r.code).toBe(1);
      expect(r.out).toContain('refusing to start an empty primary');
    } finally {
      peer.close();
    }
  });

  it("names a replica whose certificate it cannot trust, and does not start empty", async () => {
    const asked: string[] = [];
    const peer = await replicaServing(dirs.foreignNode1, asked);
    try {
      const r = await guard(peer);
      expect(asked).toEqual([]);
      expect(r.code).toBe(1);
      expect(r.out).toContain('TLS: its certificate is not signed by our ca.crt (unknown CA');
      expect(r.entries).toEqual([]);
    } finally {
      peer.close();
    }
  });
});

describe('status with TLS_DIR', () => {
  it('asks the agents over TLS with ca.crt alone', async () => {
    const caOnly = join(base, 'ca-only');
    await mkdir(caOnly);
    await copyFile(pki.caCert, join(caOnly, 'ca.crt'));
    const r = await run(['status', '--json'], { PATH: process.env.PATH, POD_NAME: 'mysql-0', PEER_HOST_TEMPLATE: '127.0.{ordinal}.1', BACKUP_PORT: String(port), POD_COUNT: '1', TLS_DIR: caOnly });
    const pod = (JSON.parse(r.out.slice(r.out.indexOf('{\n'))) as { pods: { ordinal: number; error: string | null; role: string }[] }).pods[0]!;
    expect(pod).toMatchObject({ ordinal: 0, error: null, role: 'primary', answered: true });
    // Without ca.crt of the cluster's CA, the cause is named.
    const other = join(base, 'other-ca-only');
    await mkdir(other);
    await copyFile(join(pki.root, 'other-ca.crt'), join(other, 'ca.crt'));
    const refused = await run(['status', '--json'], { PATH: process.env.PATH, POD_NAME: 'mysql-0', PEER_HOST_TEMPLATE: '127.0.{ordinal}.1', BACKUP_PORT: String(port), POD_COUNT: '1', TLS_DIR: other });
    expect(refused.code).toBe(1);
    expect((JSON.parse(refused.out.slice(refused.out.indexOf('{\n'))) as { pods: { error: string }[] }).pods[0]!.error).toContain('TLS: its certificate is not signed by our ca.crt (unknown CA');
  });
});

// Last: it renews the sidecar's files.
describe('renewal of the files while the sidecar runs', () => {
  it('serves the renewed certificate to new connections while a backup in flight keeps its own', async () => {
    const before = await tlsGet(url('/healthz'), { ca: pki.caCert });
    await writeFile(slowFile, '');
    let firstBytes = false;
    const inFlight = tlsGet(url('/backup'), { ca: pki.caCert, client: dirs.client }, { headers: { authorization: `Bearer ${TOKEN}` }, onData: () => (firstBytes = true) });
    await waitUntil(() => firstBytes, 'the backup to stream');
    await copyTlsDir(dirs.renewed, served);
    await waitUntil(() => sidecar.stdout.includes('TLS files changed: serving the new certificate'), 'the reload', 15_000);
    const after = await tlsGet(url('/healthz'), { ca: pki.caCert });
    expect(after.serverSerial).not.toBe(before.serverSerial);
    const backup = await inFlight;
    expect(backup.serverSerial).toBe(before.serverSerial);
    expect(backup.trailers['x-backup-status']).toBe('Success');
    await rm(slowFile);
    // A new clone uses the new certificate.
    const r = await init({ TLS_DIR: dirs.node1 });
    expect(r.code, r.out).toBe(0);
  }, 60_000);

  it('keeps the served certificate when the new files do not serve (a key of another certificate), naming why', async () => {
    await copyFile(join(dirs.mismatch, 'tls.key'), join(served, 'tls.key'));
    await waitUntil(() => sidecar.stdout.includes('TLS files changed but do not serve'), 'the refused reload', 15_000);
    expect(sidecar.stdout).toContain('tls.key does not match tls.crt');
    expect((await tlsGet(url('/healthz'), { ca: pki.caCert })).status).toBe(200);
  }, 30_000);
});
