/**
 * The container tier: the agent image (Dockerfile, stand-in bases), three pods of the
 * mariadb flavor's StatefulSet run in Docker from its own pod template, then a fourth.
 * Real mariadbd, real mariadb-backup, real agent image; traffic only to this run's containers.
 */
import { type ClientRequest, request } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawGet, waitUntil } from '../rig/helpers.js';
import { isAgent } from '../manifests/check.js';
import { TEST_SECRET, renderFlavor } from '../manifests/render.js';
import { imageParts } from '../manifests/versions.js';
import { Cluster, buildAgentImage, buildStandins, docker, requireDocker } from './cluster.js';

const AGENT_IMAGE = 'mysql-agent:container-test';
const MINUTE = 60_000;
let cluster: Cluster;

/** Rows of test.t on a node, by id. */
const ids = async (ordinal: number) => (await cluster.sql<{ id: number }>(ordinal, 'SELECT id FROM test.t ORDER BY id')).map((r) => r.id);
const insert = (...values: number[]) => cluster.sql(0, `INSERT INTO test.t (id) VALUES ${values.map(() => '(?)').join(', ')}`, values);
const status = async (ordinal: number) => (await fetch(`http://${await cluster.ip(ordinal)}:3307/status`)).json() as Promise<Record<string, any>>;
const waitForRows = (ordinal: number, expected: number[], timeoutMs = 60_000) =>
  waitUntil(async () => JSON.stringify(await ids(ordinal).catch(() => [])) === JSON.stringify(expected), `rows ${expected} on mysql-${ordinal}`, timeoutMs);

beforeAll(async () => {
  await requireDocker();
  const standins = await buildStandins();
  await buildAgentImage(AGENT_IMAGE, standins);
  cluster = new Cluster(await renderFlavor('mariadb'), AGENT_IMAGE, standins, [0, 1, 2, 3]);
  await cluster.up([0, 1, 2]);
  await waitUntil(async () => (await cluster.readPath([0, 1, 2])).length === 3, 'mysql-0..2 ready', 5 * MINUTE);
  await cluster.sql(0, 'CREATE DATABASE test');
  await cluster.sql(0, 'CREATE TABLE test.t (id INT PRIMARY KEY)');
}, 20 * MINUTE);

afterAll(async () => {
  await cluster?.down();
}, 2 * MINUTE);

describe('three pods of the StatefulSet in Docker', () => {
  it('run the agent image as uid 999 on a read-only root, with the role config init wrote', async () => {
    for (const container of ['init', 'sidecar']) {
      const config = await docker(['inspect', '-f', '{{.Config.Image}} {{.Config.User}} {{.HostConfig.ReadonlyRootfs}}', await cluster.containerId(1, container)]);
      expect(config).toBe(`${AGENT_IMAGE} 999:999 true`);
    }
    for (const n of [0, 1, 2]) {
      const [vars] = await cluster.sql<{ id: number; ro: number }>(n, 'SELECT @@server_id AS id, @@read_only AS ro');
      expect(vars).toEqual({ id: 100 + n, ro: n === 0 ? 0 : 1 });
    }
  });

  it('run the pinned server release, and the agent image carries the backup tool of that same release', async () => {
    const image = cluster.sts.spec.template.spec.containers.find((c) => !isAgent(c))!.image;
    const release = imageParts(image).tag;
    const version = (await cluster.sql<{ version: string }>(0, 'SELECT VERSION() AS version'))[0]?.version;
    const tool = await docker(['run', '--rm', '--entrypoint', 'sh', AGENT_IMAGE, '-c', 'mariadb-backup --version 2>&1']);
    expect({ version, tool }).toEqual({ version: expect.stringMatching(new RegExp(`^${release.replaceAll('.', '\\.')}-MariaDB`)), tool: expect.stringContaining(`based on MariaDB server ${release}-MariaDB`) });
  });

  it('carry zstd in the agent image, on PATH where the sidecar and init look for it', async () => {
    const out = await docker(['run', '--rm', '--entrypoint', 'sh', AGENT_IMAGE, '-c', 'command -v zstd && echo through-zstd | zstd -1 | zstd -d']);
    expect(out.split('\n')).toEqual([expect.stringMatching(/^\/usr\/(local\/)?bin\/zstd$/), 'through-zstd']);
  });

  it('replicate writes on mysql-0 to mysql-1 and mysql-2', async () => {
    await insert(1, 2, 3);
    await waitForRows(1, [1, 2, 3]);
    await waitForRows(2, [1, 2, 3]);
    expect((await status(2)).replication).toMatchObject({ source_host: 'mysql-0.mysql', io_running: 'Yes', sql_running: 'Yes' });
  });

  it('show as healthy to `mysql-agent status` run inside a pod, as `kubectl exec mysql-0 -c sidecar -- mysql-agent status` would', async () => {
    const sidecar = await cluster.containerId(0, 'sidecar');
    const s = JSON.parse(await docker(['exec', sidecar, 'mysql-agent', 'status', '--json'])) as { healthy: boolean; pods: Record<string, unknown>[] };
    expect(s.healthy).toBe(true);
    expect(s.pods.map((p) => [p.pod, p.host, p.role, p.ready, p.source_host])).toEqual([
      ['mysql-0', 'mysql-0.mysql', 'primary', true, null],
      ['mysql-1', 'mysql-1.mysql', 'replica', true, 'mysql-0.mysql'],
      ['mysql-2', 'mysql-2.mysql', 'replica', true, 'mysql-0.mysql'],
    ]);
    expect(await docker(['exec', sidecar, 'mysql-agent', 'status'])).toMatch(/3 pods, all healthy$/);
  });

  it('put in the read path only the nodes that replicate', async () => {
    expect(await cluster.readPath([0, 1, 2])).toEqual([0, 1, 2]);
    await cluster.sql(2, 'STOP SLAVE');
    await waitUntil(async () => JSON.stringify(await cluster.readPath([0, 1, 2])) === '[0,1]', 'mysql-2 out of the read path', MINUTE);
    await cluster.sql(2, 'START SLAVE');
    await waitUntil(async () => (await cluster.readPath([0, 1, 2])).length === 3, 'mysql-2 back in the read path', MINUTE);
  });

  it('reach no account with an empty password over the network', async () => {
    const empty = await cluster.sql(0, "SELECT User, Host FROM mysql.user WHERE Password = '' AND authentication_string = '' AND Host <> 'localhost'");
    expect(empty).toEqual([]);
    for (const user of ['root', '', 'replication', 'agent']) {
      expect(await cluster.loginError(0, user, ''), `${user || 'anonymous'} without a password`).toMatch(/Access denied/);
    }
    // The agent's account exists for its own pod only, even with the right password.
    expect(await cluster.loginError(0, 'agent', TEST_SECRET['agent-password']!)).toMatch(/Access denied/);
    expect(await cluster.loginError(0, 'replication', TEST_SECRET['replication-password']!)).toBeNull();
  });

  it('refuse a backup request without the token', async () => {
    const url = `http://${await cluster.ip(1)}:3307/backup`;
    expect((await rawGet(url)).status).toBe(401);
    expect((await rawGet(url, { authorization: 'Bearer not-the-token-0123456789' })).status).toBe(401);
    const served = await rawGet(url, { authorization: `Bearer ${TEST_SECRET['backup-token']}` });
    expect(served.status).toBe(200);
    expect(served.trailers['x-backup-status']).toBe('Success');
  });

  it('resume replication after mysql-1 stops and restarts, without a new clone or CHANGE MASTER', async () => {
    await cluster.compose(['stop', '-t', '30', 'mysql-1-sidecar', 'mysql-1-mysql']);
    const restartedAt = new Date(Date.now() - 1000).toISOString();
    await insert(4, 5);
    // Up again as a restarted pod: init first, then the server and the sidecar.
    await cluster.compose(['up', '-d', 'mysql-1-init', 'mysql-1-mysql', 'mysql-1-sidecar']);
    await waitForRows(1, [1, 2, 3, 4, 5], 2 * MINUTE);
    await waitUntil(() => cluster.ready(1), 'mysql-1 ready again', MINUTE);

    const init = (await cluster.agentLog(1, 'init', restartedAt)).map((l) => l.msg);
    expect(init).toContain('datadir already initialised: no clone');
    expect(init).not.toContain('clone attempt');
    const sidecar = (await cluster.agentLog(1, 'sidecar', restartedAt)).map((l) => l.msg);
    expect(sidecar).toContain('replication was configured earlier: not applying it again');
    expect(sidecar).not.toContain('applying');
    expect((await status(1)).replication.setup).toEqual({ state: 'configured', how: 'recorded-earlier' });
  });

  it('keep a donor alive while it streams a long clone', async () => {
    // A receiver that stops reading stalls the backup tool mid-stream, as a slow clone does.
    const stalled = await new Promise<ClientRequest>((resolve, reject) => {
      cluster.ip(2).then((ip) => {
        const req = request(`http://${ip}:3307/backup`, { headers: { authorization: `Bearer ${TEST_SECRET['backup-token']}` } }, (res) => {
          res.once('data', () => {
            res.pause();
            resolve(req);
          });
        });
        req.on('error', reject).end();
      }, reject);
    });
    try {
      await delay(2000);
      expect((await status(2)).backup_in_progress).not.toBeNull();
      for (const name of ['mysql', 'sidecar']) {
        const c = cluster.container(name);
        expect(await cluster.probe(2, c, c.livenessProbe), `${name} liveness`).toBe(true);
      }
    } finally {
      stalled.destroy();
    }
    await waitUntil(async () => (await status(2)).backup_in_progress === null, 'the stalled backup ended', MINUTE);
  });

  it('clone a fourth node from mysql-2 and let it catch up', async () => {
    await insert(6);
    await cluster.up([3]);
    await insert(7);
    await waitUntil(() => cluster.ready(3), 'mysql-3 ready', 3 * MINUTE);
    await waitForRows(3, [1, 2, 3, 4, 5, 6, 7]);

    const init = await cluster.agentLog(3, 'init');
    expect(init.find((l) => l.msg === 'clone accepted into the datadir')).toMatchObject({ peer: 'mysql-2.mysql:3307' });
    expect((await status(3)).replication).toMatchObject({ setup: { how: 'applied', from: 'xtrabackup_slave_info' }, source_host: 'mysql-0.mysql' });
    expect(await cluster.readPath([0, 1, 2, 3])).toEqual([0, 1, 2, 3]);
  });
});
