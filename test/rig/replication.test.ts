/**
 * A three-node cluster built the way the StatefulSet builds it: node1 clones from the primary
 * (binlog_info path), node2 from node1 (slave_info path); replication starts once and only once.
 * Position mode (REPLICATION_MODE=position) throughout.
 */
import { copyFile, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rig } from './rig.js';
import { newBaseDir, waitUntil } from './helpers.js';

let rig: Rig;
const runs: Record<number, Awaited<ReturnType<Rig['nodes'][number]['up']>>> = {};

beforeAll(async () => {
  // Binlog positions, as the tutorial does; gtid.test.ts covers the GTID default of MariaDB.
  rig = new Rig({ baseDir: await newBaseDir('replication'), ipPrefix: '127.0.0.5', agentEnv: { REPLICATION_MODE: 'position' } });
  for (let n = 0; n < 3; n++) runs[n] = await rig.node(n).up();
});

afterAll(async () => {
  await rig?.destroy();
});

const countRows = async (ordinal: number) =>
  Number((await rig.node(ordinal).sql<{ n: number }>('SELECT COUNT(*) AS n FROM app.items'))[0]!.n);

describe('a cluster brought up node by node', () => {
  it('writes server-id.cnf and the role file for each ordinal', async () => {
    for (let n = 0; n < 3; n++) {
      const node = rig.node(n);
      expect(await readFile(join(node.confDir, 'server-id.cnf'), 'utf8')).toBe(`[mysqld]\nserver-id=${100 + n}\n`);
      const [row] = await node.sql<{ id: number }>('SELECT @@server_id AS id');
      expect(Number(row!.id)).toBe(100 + n);
    }
    expect(await readFile(join(rig.node(0).confDir, 'primary.cnf'), 'utf8')).toContain('log-bin');
    expect(await readFile(join(rig.node(1).confDir, 'replica.cnf'), 'utf8')).toContain('read-only=1');
  });

  it('clones node1 from the primary through binlog_info and node2 from node1 through slave_info', async () => {
    const done1 = runs[1]!.lines.find((l) => l.phase === 'done');
    const done2 = runs[2]!.lines.find((l) => l.phase === 'done');
    expect(done1?.peer).toBe('127.0.0.50:3307');
    expect(done2?.peer).toBe('127.0.0.51:3307');
    expect(Number(done1?.bytes)).toBeGreaterThan(1_000_000);

    const applied = (ordinal: number) =>
      rig.node(ordinal).sidecarLines().filter((l) => l.msg === 'applying').map((l) => String(l.sql));
    // A clone may carry its donor's channel: cleared first, on every fresh clone.
    expect(applied(1).slice(0, 2)).toEqual(['STOP SLAVE', 'RESET SLAVE ALL']);
    expect(applied(1)[2]).toMatch(/^CHANGE MASTER TO MASTER_HOST='127\.0\.0\.50', .*MASTER_PASSWORD='\*\*\*'.*MASTER_LOG_FILE='mysql-bin\.\d+', MASTER_LOG_POS=\d+$/);
    expect(rig.node(1).sidecarLines().find((l) => l.msg === 'applying')?.from).toBe('xtrabackup_binlog_info');
    expect(rig.node(2).sidecarLines().find((l) => l.msg === 'applying')?.from).toBe('xtrabackup_slave_info');
    expect(applied(1)[3]).toBe('START SLAVE');
    // The password never reaches a log line.
    for (const n of [1, 2]) expect(rig.node(n).sidecarOutput).not.toContain('rig-repl-pw');

    for (const n of [1, 2]) {
      const s = await rig.node(n).replicaStatus();
      expect(s?.Master_Host).toBe('127.0.0.50');
      expect(s?.Slave_IO_Running).toBe('Yes');
      expect(s?.Slave_SQL_Running).toBe('Yes');
      expect(s?.Using_Gtid).toBe('No');
    }
  });

  it('replicates rows written on the primary afterwards to both replicas', async () => {
    const primary = rig.node(0);
    await primary.sql('CREATE DATABASE app');
    await primary.sql('CREATE TABLE app.items (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40), KEY (v))');
    for (let i = 0; i < 20; i++) await primary.sql('INSERT INTO app.items (v) VALUES (?)', [`row-${i}`]);
    for (const n of [1, 2]) await waitUntil(async () => (await countRows(n)) === 20, `20 rows on node ${n}`);
  });

  it('reports ready and the replication state over HTTP', async () => {
    const res = await rig.node(2).http('/readyz');
    expect(res.status).toBe(200);
    const status = (await (await rig.node(2).http('/status?fresh=1')).json()) as Record<string, any>;
    expect(status).toMatchObject({ pod: 'mysql-2', ordinal: 2, role: 'replica', server_id: 102, ready: true });
    expect(status.replication).toMatchObject({ source_host: '127.0.0.50', io_running: 'Yes', sql_running: 'Yes' });
    expect(JSON.stringify(status)).not.toContain('rig-repl-pw');
    const primary = (await (await rig.node(0).http('/status?fresh=1')).json()) as Record<string, any>;
    expect(primary).toMatchObject({ role: 'primary', ready: true, replication: null });
  });

  it('does not apply CHANGE MASTER again when the sidecar restarts, and replication keeps running', async () => {
    const node = rig.node(1);
    const before = await node.replicaStatus();
    expect((await node.stopSidecar()).code).toBe(0);
    node.startSidecar();
    await node.waitFor('/readyz');
    expect(node.sidecarLines().some((l) => l.msg === 'applying')).toBe(false);
    expect(node.sidecarLines().some((l) => String(l.msg).includes('configured earlier'))).toBe(true);
    const after = await node.replicaStatus();
    expect(after?.Slave_IO_Running).toBe('Yes');
    // Not re-pointed at the clone's old position: the read position only moved forward.
    expect(Number(after?.Read_Master_Log_Pos)).toBeGreaterThanOrEqual(Number(before?.Read_Master_Log_Pos));
    await rig.node(0).sql("INSERT INTO app.items (v) VALUES ('after-restart')");
    await waitUntil(async () => (await countRows(1)) === 21, '21 rows on node 1');
  });

  it('recognises a crash between CHANGE MASTER and the record: adopts, does not repeat', async () => {
    const node = rig.node(2);
    await node.stopSidecar('SIGKILL');
    // What a crash right after CHANGE MASTER leaves: the server configured, the record written
    // ahead still `applying`.
    const file = join(node.dataDir, 'mysql-agent-replication.json');
    const written = JSON.parse(await readFile(file, 'utf8'));
    expect(written).toMatchObject({ state: 'applied', how: 'applied' });
    await writeFile(file, JSON.stringify({ ...written, state: 'applying', how: undefined }));
    node.startSidecar();
    await node.waitFor('/readyz');
    expect(node.sidecarLines().some((l) => l.msg === 'applying')).toBe(false);
    expect(node.sidecarLines().some((l) => String(l.msg).includes('adopting'))).toBe(true);
    const record = JSON.parse(await readFile(file, 'utf8'));
    expect(record).toMatchObject({ state: 'applied', how: 'found-on-server' });
    await rig.node(0).sql("INSERT INTO app.items (v) VALUES ('after-adopt')");
    await waitUntil(async () => (await countRows(2)) === 22, '22 rows on node 2');
  });

  it('waits for a late server, then refuses an info file that does not parse: not ready, nothing applied, file kept', async () => {
    const node = rig.node(3);
    const run = await node.init();
    expect(run.code).toBe(0);
    const slaveInfo = join(node.dataDir, 'xtrabackup_slave_info');
    const injected = "CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001'; DROP DATABASE app; -- ', MASTER_LOG_POS=4;\n";
    await writeFile(slaveInfo, injected);
    // The sidecar starts before the server, as containers of a pod may.
    node.startSidecar();
    await node.waitFor('/healthz');
    await waitUntil(() => node.sidecarLines().some((l) => l.msg === 'waiting for the local server'), 'a waiting log line');
    expect((await node.http('/readyz')).status).toBe(503);
    await node.startServer();
    const status = await waitUntil(async () => {
      const s = (await (await node.http('/status?fresh=1')).json()) as Record<string, any>;
      return s.replication?.setup?.state === 'blocked' ? s : undefined;
    }, 'the setup verdict');
    expect(status.ready).toBe(false);
    expect(status.not_ready_reason).toContain('xtrabackup_slave_info');
    expect((await node.http('/readyz')).status).toBe(503);
    expect((await node.http('/healthz')).status).toBe(200);
    const logged = node.sidecarLines().find((l) => l.msg === 'clone info file does not parse: replication not started');
    expect(logged?.content).toBe(injected);
    expect(await readFile(slaveInfo, 'utf8')).toBe(injected);
    expect(await node.replicaStatus()).toBeUndefined();
    expect((await node.sql("SHOW DATABASES LIKE 'app'")).length).toBe(1);
    // A replica that does not replicate must not hand out backups.
    const backup = await node.http('/backup', { headers: { authorization: `Bearer ${rig.token}` } });
    expect(backup.status).toBe(503);
    await node.down();
  });

  // skip-slave-start (the role configs): the server never starts a channel by itself, so the
  // sidecar starts replication on every start, of the pod and of the server container alone.
  it('starts replication again after the server restarts under a running sidecar, and after a pod restart', async () => {
    const node = rig.node(2);
    await node.stopServer();
    await node.startServer();
    await waitUntil(async () => (await node.replicaStatus())?.Slave_SQL_Running === 'Yes', 'the sidecar to start replication after the server restarted');
    await node.waitFor('/readyz');
    expect(node.sidecarLines().some((l) => l.msg === 'the local server restarted')).toBe(true);

    await node.down();
    await node.startServer();
    expect((await node.replicaStatus())?.Slave_IO_Running).toBe('No');
    node.startSidecar();
    await node.waitFor('/readyz');
    expect(node.sidecarLines().some((l) => l.msg === 'applying')).toBe(false);
    expect(node.sidecarLines().some((l) => l.msg === 'replication threads are stopped: starting them')).toBe(true);
    await rig.node(0).sql("INSERT INTO app.items (v) VALUES ('after-restarts')");
    await waitUntil(async () => (await countRows(2)) === (await countRows(0)), 'node 2 caught up after the restarts');
  });

  it("clears the replication settings a clone brought from its donor (master.info, relay logs), then applies the clone's own position: no row skipped", async () => {
    const node = rig.node(4);
    expect((await node.init()).code).toBe(0);
    // Rows written after the clone: node 4 must get them through replication from the clone's
    // position. The donor's files, copied below, point past them.
    for (let i = 0; i < 5; i++) await rig.node(0).sql('INSERT INTO app.items (v) VALUES (?)', [`after-clone-${i}`]);
    const donor = rig.node(1);
    await waitUntil(async () => (await countRows(1)) === (await countRows(0)), 'node 1 caught up');
    await donor.stopServer(); // a clean stop writes master.info and relay-log.info
    const files = (await readdir(donor.dataDir)).filter((f) => /^(master\.info|relay-log\.info|relay-bin\.)/.test(f));
    expect(files).toEqual(expect.arrayContaining(['master.info', 'relay-log.info', 'relay-bin.index']));
    for (const f of files) await copyFile(join(donor.dataDir, f), join(node.dataDir, f));
    await donor.startServer();

    await node.startServer();
    const inherited = await node.replicaStatus();
    expect(inherited?.Master_Host).toBe('127.0.0.50');
    expect(inherited?.Slave_IO_Running).toBe('No');
    node.startSidecar();
    await node.waitFor('/readyz');
    await waitUntil(async () => (await countRows(4)) === (await countRows(0)), 'node 4 has every row of the primary', 15_000);
    const rows = await node.sql<{ v: string }>("SELECT v FROM app.items WHERE v LIKE 'after-clone-%' ORDER BY id");
    expect(rows.map((r) => r.v)).toEqual([0, 1, 2, 3, 4].map((i) => `after-clone-${i}`));
    const sql = node.sidecarLines().filter((l) => l.msg === 'applying').map((l) => String(l.sql));
    expect(sql.slice(0, 2)).toEqual(['STOP SLAVE', 'RESET SLAVE ALL']);
    expect(sql[2]).toMatch(/^CHANGE MASTER TO MASTER_HOST='127\.0\.0\.50', .*MASTER_LOG_FILE='mysql-bin\.\d+', MASTER_LOG_POS=\d+$/);
    expect(node.sidecarLines().some((l) => String(l.msg).includes("its donor's channel"))).toBe(true);
    expect(JSON.parse(await readFile(join(node.dataDir, 'mysql-agent-replication.json'), 'utf8'))).toMatchObject({ state: 'applied', how: 'applied' });
    // The donor, restarted with skip-slave-start, was started again by its own sidecar.
    await donor.waitFor('/readyz');
    await node.down();
  });
});
