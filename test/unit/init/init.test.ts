/**
 * `runInit` at ordinal 0 on real directories, with the replicas' agents played by a loopback HTTP
 * server answering verbatim /status fixtures (test/fixtures/status/) and the Kubernetes API by a
 * loopback HTTPS server answering verbatim-shaped claim lists (test/fixtures/kubernetes/): which
 * datadir states reach the empty-primary guard, and what the datadir holds after each decision.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DataDirError } from '../../../agent/core/errors.js';
import { loadCommand } from '../../../agent/core/settings.js';
import { STAGING_NAME } from '../../../agent/init/datadir.js';
import { runInit } from '../../../agent/init/init.js';
import { type InitConfig, initCommand } from '../../../agent/init/settings.js';
import { type KubeApi, NAMESPACE, TOKEN, fixture, startKubeApi } from './kube-api.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/status');
/** Ordinal N's agent listens on 127.77.0.N: only ordinal 1 is played, the others refuse. */
const REPLICA_IP = '127.77.0.1';

let root: string;
let dataDir: string;
let sidecar: Server;
let port: number;
let answer: Record<string, unknown>;
let kube: KubeApi;

beforeAll(async () => {
  kube = await startKubeApi();
});

afterAll(async () => {
  await kube?.close();
});

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'init-'));
  dataDir = join(root, 'data');
  for (const d of ['config-map', 'conf.d', 'data']) await mkdir(join(root, d));
  await writeFile(join(root, 'config-map', 'primary.cnf'), '[mysqld]\nlog-bin=mysql-bin\n');
  await writeFile(join(root, 'config-map', 'replica.cnf'), '[mysqld]\nread-only=1\n');
  answer = JSON.parse(readFileSync(join(FIXTURES, 'replica-primary-down.json'), 'utf8')) as Record<string, unknown>;
  sidecar = createServer((req, res) => {
    if (req.url !== '/status?fresh=1') return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...answer, pod: 'mysql-1', ordinal: 1 }));
  });
  await new Promise<void>((r) => sidecar.listen(0, REPLICA_IP, r));
  port = (sidecar.address() as AddressInfo).port;
  kube.requests.length = 0;
  kube.answer = { status: 200, body: fixture('pvc-list-new-cluster') };
});

afterEach(async () => {
  sidecar.closeAllConnections();
  await new Promise((r) => sidecar.close(r));
  await rm(root, { recursive: true, force: true });
});

function primaryConfig(env: Record<string, string> = {}): InitConfig {
  return loadCommand({ init: initCommand }, {
    argv: ['init'],
    env: {
      PATH: '/bin',
      POD_NAME: 'mysql-0',
      CONFIG_MAP_DIR: join(root, 'config-map'),
      CONF_DIR: join(root, 'conf.d'),
      DATA_DIR: dataDir,
      PEER_HOST_TEMPLATE: '127.77.0.{ordinal}',
      PEER_PROBE_COUNT: '1',
      BACKUP_PORT: String(port),
      BACKUP_TOKEN: 'x'.repeat(32),
      CLONE_RETRY_DEADLINE: '0',
      // What the kubelet and the pod's service account volume give the init container.
      KUBERNETES_SERVICE_HOST: kube.host,
      KUBERNETES_SERVICE_PORT: String(kube.port),
      SERVICE_ACCOUNT_DIR: kube.serviceAccountDir,
      ...env,
    },
    hostname: 'ignored',
    isExecutable: (p) => p === '/bin/mariadb-backup' || p === '/bin/mbstream',
  });
}

const silent = pino({ level: 'silent' });
const init = (config: InitConfig) => runInit(config, silent, new AbortController().signal);

describe('runInit at ordinal 0 with no mysql/', () => {
  it('removes the staging directory an interrupted recovery clone left before starting empty', async () => {
    await mkdir(join(dataDir, STAGING_NAME));
    await writeFile(join(dataDir, STAGING_NAME, 'ibdata1'), 'half a clone');
    answer = { ...answer, holds_data: false };
    await init(primaryConfig());
    // MySQL's --initialize refuses a datadir with anything in it.
    expect(await readdir(dataDir)).toEqual([]);
  });

  it('removes that staging directory when it refuses, too', async () => {
    await mkdir(join(dataDir, STAGING_NAME));
    await writeFile(join(dataDir, STAGING_NAME, 'ibdata1'), 'half a clone');
    await expect(init(primaryConfig())).rejects.toThrow('replicas hold data');
    expect(await readdir(dataDir)).toEqual([]);
  });

  it.each(['refuse', 'allow', 'recover'])('refuses files that are not a datadir with PRIMARY_EMPTY_START=%s, touching nothing and asking no one', async (setting) => {
    await mkdir(join(dataDir, 'shop'));
    await writeFile(join(dataDir, 'shop', 'orders.ibd'), 'rows');
    await writeFile(join(dataDir, 'ibdata1'), 'system tablespace');
    let asked = 0;
    sidecar.on('request', () => asked++);
    const err = await init(primaryConfig({ PRIMARY_EMPTY_START: setting })).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DataDirError);
    expect((err as Error).message).toContain(`DATA_DIR=${dataDir} holds files but no mysql/ (`);
    expect(asked).toBe(0);
    expect((await readdir(dataDir)).sort()).toEqual(['ibdata1', 'shop']);
  });

  describe('after a full outage: no replica pod exists, no replica name resolves', () => {
    /** No pod: the headless Service has no record for the name. */
    const gone = { PEER_HOST_TEMPLATE: 'mysql-{ordinal}.mysql.invalid', PEER_PROBE_COUNT: '5' };

    it.each(['refuse', 'recover'])('refuses with PRIMARY_EMPTY_START=%s while the replicas\' volume claims remain, naming them', async (setting) => {
      kube.answer = { status: 200, body: fixture('pvc-list-full-outage') };
      const err = await init(primaryConfig({ ...gone, PRIMARY_EMPTY_START: setting })).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DataDirError);
      const message = (err as Error).message;
      expect(message).not.toContain('\n');
      expect(message).toContain('replicas with a volume claim did not answer: ordinal 1 (mysql-1.mysql.invalid, claim data-mysql-1: getaddrinfo ENOTFOUND mysql-1.mysql.invalid), ordinal 2 (mysql-2.mysql.invalid, claim data-mysql-2');
      expect(message).not.toContain('ordinal 3');
      expect(message).toContain('Ordinal 0 lost its volume');
      expect(message).not.toContain(TOKEN);
      expect(kube.requests).toEqual([{ path: `/api/v1/namespaces/${NAMESPACE}/persistentvolumeclaims`, authorization: `Bearer ${TOKEN}` }]);
      expect(await readdir(dataDir)).toEqual([]);
      expect(await readdir(join(root, 'conf.d'))).not.toContain('mysql-agent-primary-start.json');
    });

    it('starts empty as a new cluster when ordinal 0 has the only claim, recording the claims it saw', async () => {
      await init(primaryConfig(gone));
      const record = JSON.parse(await readFile(join(root, 'conf.d', 'mysql-agent-primary-start.json'), 'utf8'));
      expect(record).toMatchObject({ decision: 'new-cluster', claims: { source: 'kubernetes', names: [] } });
      expect(record.evidence).toHaveLength(5);
      expect(record.evidence[0]).toMatchObject({ ordinal: 1, answered: false, counts_as: 'absent', claim: null });
    });

    it('refuses when the claims cannot be read, with the API\'s own reason and the fix', async () => {
      kube.answer = { status: 403, body: fixture('status-forbidden') };
      await expect(init(primaryConfig(gone))).rejects.toThrow(
        'the Kubernetes API answered HTTP 403: persistentvolumeclaims is forbidden: User "system:serviceaccount:databases:default" cannot list resource',
      );
      await expect(init(primaryConfig(gone))).rejects.toThrow('get and list persistentvolumeclaims (manifests/base/rbac.yaml), or outside Kubernetes set VOLUME_CLAIMS=none');
      expect(await readdir(dataDir)).toEqual([]);
    });

    it('with VOLUME_CLAIMS=none asks no API and cannot tell this from a new cluster: it starts empty (documented)', async () => {
      await init(primaryConfig({ ...gone, VOLUME_CLAIMS: 'none', KUBERNETES_SERVICE_HOST: '' }));
      expect(kube.requests).toEqual([]);
      const record = JSON.parse(await readFile(join(root, 'conf.d', 'mysql-agent-primary-start.json'), 'utf8'));
      expect(record).toMatchObject({ decision: 'new-cluster', claims: { source: 'none' } });
    });
  });
});

describe('RESTORE_FROM at ordinal 0: only where the empty-primary rule would start a new cluster', () => {
  let store: Server;
  let storeRequests: string[];
  beforeEach(async () => {
    storeRequests = [];
    // Plays an S3 endpoint whose bucket is missing: any request reaching it is counted.
    store = createServer((req, res) => {
      storeRequests.push(`${req.method} ${req.url}`);
      res.writeHead(404, { 'content-type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>NoSuchBucket</Code><BucketName>bkt</BucketName></Error>');
    });
    await new Promise<void>((r) => store.listen(0, '127.77.0.9', r));
  });
  afterEach(async () => {
    store.closeAllConnections();
    await new Promise((r) => store.close(r));
  });
  const restoring = (env: Record<string, string> = {}) =>
    primaryConfig({
      RESTORE_FROM: 'latest',
      BACKUP_STORE_URL: 's3://bkt/c1',
      S3_ENDPOINT: `http://127.77.0.9:${(store.address() as AddressInfo).port}`,
      ...env,
    });
  const withKeys = async <T>(run: () => Promise<T>): Promise<T> => {
    // The SDK reads its credentials from the environment itself, as in a pod.
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = 'test';
    process.env.AWS_SECRET_ACCESS_KEY = 'test-secret';
    try {
      return await run();
    } finally {
      for (const [name, value] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  };

  it('replicas holding data still refuse: the store is never asked, DATA_DIR stays empty', async () => {
    await expect(withKeys(() => init(restoring()))).rejects.toThrow('replicas hold data');
    expect(storeRequests).toEqual([]);
    expect(await readdir(dataDir)).toEqual([]);
  });

  it('PRIMARY_EMPTY_START=allow with replicas holding data starts empty on purpose: no restore', async () => {
    await withKeys(() => init(restoring({ PRIMARY_EMPTY_START: 'allow' })));
    expect(storeRequests).toEqual([]);
    expect(await readdir(dataDir)).toEqual([]);
  });

  it('no replica holds data: the backup is looked for in the store (here a missing bucket, named)', async () => {
    answer = { ...answer, holds_data: false };
    await expect(withKeys(() => init(restoring()))).rejects.toThrow(/bucket "bkt" does not exist/);
    expect(storeRequests.length).toBeGreaterThan(0);
    expect(await readdir(dataDir)).toEqual([]);
  });
});
