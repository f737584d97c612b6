/**
 * The demo: three nodes on this machine, each started as a pod would be; rows written on the
 * primary shown on both replicas with each node's replication status. Ctrl-C (or --once)
 * tears everything down.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rig } from './rig.js';

const once = process.argv.includes('--once');
const count = 3;
const rig = new Rig({ baseDir: await mkdtemp(join(tmpdir(), 'mysql-agent-demo-')), ipPrefix: process.env.RIG_IP_PREFIX });
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\n== tearing down');
  await rig.destroy();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

try {
  for (let n = 0; n < count; n++) {
    console.log(`== node ${n} (${rig.node(n).ip}): mysql-agent init, mariadbd, mysql-agent sidecar`);
    const run = await rig.node(n).up();
    const done = run.lines.find((l) => l.phase === 'done');
    if (done) console.log(`   cloned ${done.bytes} bytes from ${done.peer} in ${done.duration_ms} ms`);
  }
  const primary = rig.node(0);
  console.log('== writing rows on the primary');
  await primary.sql('CREATE DATABASE IF NOT EXISTS demo');
  await primary.sql('CREATE TABLE IF NOT EXISTS demo.messages (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(100))');
  await primary.sql("INSERT INTO demo.messages (body) VALUES ('hello'), ('from'), ('the primary')");
  await new Promise((r) => setTimeout(r, 1500));
  for (let n = 1; n < count; n++) {
    const node = rig.node(n);
    const rows = await node.sql<{ id: number; body: string }>('SELECT id, body FROM demo.messages ORDER BY id');
    const s = await node.replicaStatus();
    console.log(`== node ${n}: ${rows.map((r) => `${r.id}:${r.body}`).join(', ')}`);
    console.log(
      `   Master_Host=${s?.Master_Host} IO=${s?.Slave_IO_Running} SQL=${s?.Slave_SQL_Running} Seconds_Behind_Master=${s?.Seconds_Behind_Master} Exec_Master_Log_Pos=${s?.Exec_Master_Log_Pos}`,
    );
    const status = (await (await node.http('/status')).json()) as Record<string, unknown>;
    console.log(`   GET ${node.url('/status')} → ready=${status.ready}`);
  }
  if (once) await stop();
  console.log('\nThe cluster is up. Try: curl -s http://127.0.0.11:3307/status ; Ctrl-C tears it down.');
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  await rig.destroy();
  process.exit(1);
}
