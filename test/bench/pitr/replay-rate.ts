/**
 * `npx tsx test/bench/pitr/replay-rate.ts [transactions]` (under the rig lock): the agent's
 * point-in-time replay against the shell pipe on the same archived files, and the archiving
 * sidecar's peak RSS. A rig primary with the archive on writes N autocommit transactions after a
 * backup; cluster B restores to the last of them (the agent: download, SHA-256, throwaway server,
 * mariadb-binlog → mariadb); cluster C restores the backup alone, then the same files go through
 * `mariadb-binlog … | mariadb` into a throwaway server on C's datadir. Prints one JSON line.
 */
import { execFile, spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startRgw } from '../../store/rgw.js';
import { newBaseDir, waitUntil } from '../../rig/helpers.js';
import { Rig } from '../../rig/rig.js';
import { listBackups, runStore, storeEnv } from '../../rig/store-helpers.js';

const execFileP = promisify(execFile);
const N = Number(process.argv[2] ?? 20000);
const rgw = await startRgw();
const rigs: Rig[] = [];
try {
  await rgw.createBucket('bench');
  const URL = 's3://bench/c';
  const store = { BACKUP_STORE_URL: URL, ...rgw.env() };
  const a = new Rig({ baseDir: await newBaseDir('pitr-bench-a'), ipPrefix: '127.0.6.8', agentEnv: { ...store, BINLOG_ARCHIVE_INTERVAL: '5' } });
  rigs.push(a);
  const p = a.node(0);
  await p.up();
  await p.sql('CREATE DATABASE shop');
  await p.sql('CREATE TABLE shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64), at DATETIME(6))');
  if ((await runStore(a, ['backup'], storeEnv(a, rgw, URL))).code !== 0) throw new Error('backup failed');
  const backupGtid = (await listBackups(a, storeEnv(a, rgw, URL)))[0]!.coordinates.gtid as string;
  await p.sql(`CREATE PROCEDURE shop.fill(n INT) BEGIN DECLARE i INT DEFAULT 0; WHILE i < n DO INSERT INTO shop.t (v, at) VALUES (MD5(i), NOW(6)); SET i = i + 1; END WHILE; END`);
  const t0 = Date.now();
  await p.sql('CALL shop.fill(?)', [N]);
  const writeS = (Date.now() - t0) / 1000;
  await p.sql('FLUSH BINARY LOGS');
  const end = ((await p.sql<{ g: string }>('SELECT @@gtid_binlog_pos AS g'))[0]!.g);
  await waitUntil(async () => ((await (await p.http('/status')).json()) as any).binlog_archive?.last_archived?.end_state === end, 'archived', 120_000);
  const sidecarHwm = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${p.sidecar!.pid}/status`, 'utf8'))![1];

  const b = new Rig({ baseDir: await newBaseDir('pitr-bench-b'), ipPrefix: '127.0.6.9' });
  rigs.push(b);
  const run = await b.node(0).init({ ...store, RESTORE_FROM: 'latest', RESTORE_TO_GTID: end });
  if (run.code !== 0) throw new Error(`restore failed: ${JSON.stringify(run.lines.at(-1))}`);
  const agent = run.lines.find((l) => l.msg === 'archived binary logs applied up to the point') as Record<string, number>;
  const files = (run.lines.filter((l) => l.msg === 'archived binary log downloaded, SHA-256 matches its index record') as { file: string }[]).map((l) => join(p.dataDir, l.file));

  // The shell pipe on the same files, into a throwaway server on the backup alone.
  const c = new Rig({ baseDir: await newBaseDir('pitr-bench-c'), ipPrefix: '127.0.7.1' });
  rigs.push(c);
  if ((await c.node(0).init({ ...store, RESTORE_FROM: 'latest' })).code !== 0) throw new Error('plain restore failed');
  const sock = join(c.node(0).dir, 'pipe.sock');
  const server = spawn('mariadbd', ['--no-defaults', `--datadir=${c.node(0).dataDir}`, `--socket=${sock}`, '--skip-networking', '--skip-grant-tables', '--skip-log-bin', '--innodb-buffer-pool-size=64M', `--log-error=${join(c.node(0).dir, 'pipe.err')}`, ...(process.getuid?.() === 0 ? ['--user=root'] : [])], { stdio: 'ignore' });
  await waitUntil(async () => (await readdir(c.node(0).dir)).includes('pipe.sock'), 'pipe server', 60_000);
  await delay(500);
  const t1 = Date.now();
  await execFileP('bash', ['-o', 'pipefail', '-c', `mariadb-binlog --no-defaults --start-position=${backupGtid} --stop-position=${end} ${files.join(' ')} | mariadb --no-defaults --socket=${sock} --user=root --binary-mode`]);
  const pipeMs = Date.now() - t1;
  const n = Number((await execFileP('mariadb', ['--no-defaults', `--socket=${sock}`, '--user=root', '-N', '-e', 'SELECT COUNT(*) FROM shop.t'])).stdout.trim());
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  const bytes = agent.bytes;
  console.log(
    JSON.stringify({
      transactions: N,
      write_s: writeS,
      binlog_bytes: bytes,
      agent_replay_ms: agent.duration_ms,
      pipe_ms: pipeMs,
      agent_vs_pipe: +(pipeMs / agent.duration_ms).toFixed(2),
      pipe_rows: n,
      sidecar_peak_rss_mb: Math.round(Number(sidecarHwm) / 1024),
    }),
  );
} finally {
  for (const r of rigs.reverse()) await r.destroy();
  await rgw.stop();
}
