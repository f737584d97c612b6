/**
 * `npx tsx test/bench/pitr/archive-memory.ts [rows]` (under the rig lock): where the archiving
 * sidecar's memory goes. A rig primary without the archive writes one large binary log (sysbench
 * `prepare`, 4 tables of `rows`); each variant then runs in a process of its own
 * (archive-memory-child.mjs, node --max-semi-space-size=1 like dist/cli.js) against one Ceph RGW:
 *   bare          the binlog reader alone imported     sdk   plus the store (AWS SDK) loaded
 *   summarize     the index pass (SHA-256, every header)
 *   upload-stream that, then the file streamed through the SDK's multipart uploader (the archive before)
 *   upload-file   that, then Store.uploadFile: each part read from the file, no part buffer (the archive now)
 *   …-collected   the reads' chunks counted into the young-generation collector (stream/meter.ts)
 *   archiver-only-collected  upload-file-collected in a process that also loads what a container
 *                 running only the archiver would (driver, log, archiver, metrics)
 * The last three again with glibc's malloc as dist/cli.js sets it (MALLOC).
 * Prints one JSON line per variant.
 */
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { newBaseDir } from '../../rig/helpers.js';
import { CREDENTIALS, REPO, Rig } from '../../rig/rig.js';
import { startRgw } from '../../store/rgw.js';

const execFileP = promisify(execFile);
const ROWS = Number(process.argv[2] ?? 100000);
/** glibc's malloc as dist/cli.js's `#!` line starts node: a fixed mmap threshold (no raise after a large free), two arenas. */
const MALLOC = { GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=1048576:glibc.malloc.arena_max=2' };
const rgw = await startRgw();
const rig = new Rig({ baseDir: await newBaseDir('archive-memory'), ipPrefix: '127.0.7.5' });
try {
  await rgw.createBucket('mem');
  const p = rig.node(0);
  await p.up();
  await p.sql('CREATE DATABASE sbtest');
  await execFileP('sysbench', ['oltp_write_only', '--db-driver=mysql', `--mysql-socket=${p.socket}`, '--mysql-user=root', `--mysql-password=${CREDENTIALS.root}`, '--mysql-db=sbtest', '--tables=4', `--table-size=${ROWS}`, 'prepare']);
  await p.sql('FLUSH BINARY LOGS');
  const files = (await p.sql<{ Log_name: string; File_size: number }>('SHOW BINARY LOGS')).slice(0, -1);
  const big = files.reduce((a, b) => (Number(b.File_size) > Number(a.File_size) ? b : a));
  const file = join(p.dataDir, big.Log_name);
  console.error(`[mem] ${big.Log_name}: ${((await stat(file)).size / 1e6).toFixed(1)} MB`);
  const variants = ['bare', 'sdk', 'summarize', 'summarize-collected', 'upload-stream', 'upload-stream-collected', 'upload-file-collected', 'archiver-only-collected'];
  const runs = [...variants.map((v) => [v, {}] as const), ...['sdk', 'upload-file-collected', 'archiver-only-collected'].map((v) => [v, MALLOC] as const)];
  for (const [variant, malloc] of runs) {
    const { stdout } = await execFileP(process.execPath, ['--max-semi-space-size=1', join(REPO, 'test/bench/pitr/archive-memory-child.mjs'), variant, file, rgw.endpoint, 'mem'], {
      env: { ...process.env, ...malloc, AWS_ACCESS_KEY_ID: rgw.user.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.user.secretAccessKey },
    });
    process.stdout.write(`${JSON.stringify({ ...JSON.parse(stdout), malloc })}\n`);
  }
} finally {
  await rig.destroy();
  await rgw.stop();
}
