/**
 * GTID replication on real MariaDB (REPLICATION_MODE=auto, the default): a replica cloned from
 * the primary (binlog_info's third column) and one cloned from that GTID replica (the two-line
 * slave_info) both replicate with Using_Gtid: Slave_Pos and catch up with later writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rig } from './rig.js';
import { newBaseDir, runPlan, waitUntil } from './helpers.js';

let rig: Rig;

beforeAll(async () => {
  rig = new Rig({ baseDir: await newBaseDir('gtid'), ipPrefix: '127.0.0.3' });
  const primary = rig.node(0);
  await primary.up();
  // Data before the clones: it must arrive through the clone, not through replication.
  await primary.sql('CREATE DATABASE shop');
  await primary.sql('CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(40), KEY (item))');
  for (let i = 0; i < 10; i++) await primary.sql('INSERT INTO shop.orders (item) VALUES (?)', [`before-${i}`]);
  await rig.node(1).up();
  await rig.node(2).up();
});

afterAll(async () => {
  await rig?.destroy();
});

const applied = (ordinal: number) => rig.node(ordinal).sidecarLines().filter((l) => l.msg === 'applying').map((l) => String(l.sql));
const orders = async (ordinal: number) =>
  Number((await rig.node(ordinal).sql<{ n: number }>('SELECT COUNT(*) AS n FROM shop.orders'))[0]!.n);

describe('GTID replication chosen by auto on MariaDB', () => {
  it('sets gtid_slave_pos from the clone and uses MASTER_USE_GTID=slave_pos on both replicas', async () => {
    for (const n of [1, 2]) {
      const sql = applied(n);
      expect(sql.slice(0, 2)).toEqual(['STOP SLAVE', 'RESET SLAVE ALL']);
      expect(sql[2]).toMatch(/^SET GLOBAL gtid_slave_pos = '\d+-\d+-\d+(,\d+-\d+-\d+)*'$/);
      expect(sql[3]).toMatch(/^CHANGE MASTER TO MASTER_HOST='127\.0\.0\.30', .*MASTER_USE_GTID=slave_pos$/);
      expect(sql[3]).not.toContain('MASTER_LOG_FILE');
      expect(sql[4]).toBe('START SLAVE');
      expect(rig.node(n).sidecarLines().find((l) => l.msg === 'replication mode chosen')?.mode).toBe('gtid');
    }
    expect(rig.node(1).sidecarLines().find((l) => l.msg === 'applying')?.from).toBe('xtrabackup_binlog_info');
    expect(rig.node(2).sidecarLines().find((l) => l.msg === 'applying')?.from).toBe('xtrabackup_slave_info');
  });

  it('starts each replica at the GTID the clone ended at', async () => {
    const [row] = await rig.node(1).sql<{ pos: string }>('SELECT @@gtid_slave_pos AS pos');
    expect(String(row!.pos)).toMatch(/^0-100-\d+$/);
    for (const n of [1, 2]) expect(await orders(n)).toBe(10);
  });

  it('replicates with Using_Gtid: Slave_Pos and catches up with rows written later', async () => {
    const primary = rig.node(0);
    for (let i = 0; i < 25; i++) await primary.sql('INSERT INTO shop.orders (item) VALUES (?)', [`after-${i}`]);
    await primary.sql("UPDATE shop.orders SET item = CONCAT(item, '-x') WHERE id % 2 = 0");
    for (const n of [1, 2]) {
      await waitUntil(async () => (await orders(n)) === 35, `35 rows on node ${n}`);
      const s = await rig.node(n).replicaStatus();
      expect(s?.Using_Gtid).toBe('Slave_Pos');
      expect(s?.Slave_IO_Running).toBe('Yes');
      expect(s?.Slave_SQL_Running).toBe('Yes');
      const [expected] = await primary.sql<{ Checksum: number }>('CHECKSUM TABLE shop.orders');
      await waitUntil(async () => {
        const [c] = await rig.node(n).sql<{ Checksum: number }>('CHECKSUM TABLE shop.orders');
        return String(c!.Checksum) === String(expected!.Checksum);
      }, `node ${n} to have the primary's checksum`);
    }
    const status = (await (await rig.node(2).http('/status?fresh=1')).json()) as Record<string, any>;
    expect(status.replication.using_gtid).toBe('Slave_Pos');
  });

  it('plan on a configured replica says the sidecar applies nothing', async () => {
    const result = await runPlan([], rig.node(2).agentEnv());
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('applies nothing');
  });
});
