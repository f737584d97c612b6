/**
 * `npm run bench -- --archive`: the binary log archive under a steady write load. A rig primary
 * with the archive on (BINLOG_ARCHIVE_INTERVAL, default 60 s, into the test store, Ceph RGW) takes
 * sysbench `oltp_write_only` for --rounds intervals and a half; every second the sidecar's
 * /metrics (lag, files waiting, bytes archived) and its RSS are sampled. The lag is also taken
 * from the store itself: each archived file's index record says when its oldest transaction
 * committed and when it reached the store, which is the lag just before it arrived (the gauge is
 * refreshed only at the archiver's ticks, up to 5 s apart).
 *
 *   npm run bench -- --archive [--interval S] [--rounds N] [--size GB] [--threads N] [--out DIR]
 *
 * --size: sysbench's four tables together; --rounds: intervals of load (at least 3 for the figure
 * the README quotes).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { cpus, hostname, totalmem } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { newBaseDir, waitUntil } from '../rig/helpers.js';
import { CREDENTIALS, Rig, type RigNode } from '../rig/rig.js';
import { startRgw, type Rgw } from '../store/rgw.js';
import { benchArgs, fixed as f, writeReport } from './measure.js';

const execFileP = promisify(execFile);
const { sizeGb: SIZE_GB, rounds: ROUNDS, out: OUT, extra } = benchArgs('archive', '0.1', { interval: '60', threads: '2' });
const INTERVAL_S = Number(extra.interval);
const THREADS = Number(extra.threads);
if (!(Number.isInteger(INTERVAL_S) && INTERVAL_S >= 5) || !(Number.isInteger(THREADS) && THREADS >= 1)) {
  console.error('bench: --interval must be whole seconds, at least 5 (BINLOG_ARCHIVE_INTERVAL\'s minimum), and --threads at least 1');
  process.exit(2);
}
const BUCKET = 'bench';
const PREFIX = 'archive/';
const TABLES = 4;
/** An oltp_write_only row with its secondary index takes about 230 bytes of tablespace. */
const TABLE_ROWS = Math.max(1000, Math.round((SIZE_GB * 1e9) / TABLES / 230));
const LOAD_S = Math.ceil((ROUNDS + 0.5) * INTERVAL_S);
const log = (msg: string) => console.error(`[bench] ${msg}`);

interface Sample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly lag_s: number | null;
  readonly files_waiting: number | null;
  readonly bytes_archived: number | null;
  readonly rss_mb: number;
  /** What the RSS is: anonymous memory (heap, buffers, malloc) and file pages (mostly Node's own binary). */
  readonly anon_mb: number;
  readonly file_mb: number;
  /** The V8 heap in use and the memory outside it (Buffers), from the sidecar's own default metrics. */
  readonly heap_used_mb: number | null;
  readonly external_mb: number | null;
}

const mb = (bytes: number | null) => (bytes === null ? null : bytes / 2 ** 20);

/** One gauge's value in a Prometheus text page, null when it is absent. */
function gauge(page: string, name: string): number | null {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(page);
  return m ? Number(m[1]) : null;
}

/** Nearest-rank percentile. */
const percentile = (xs: readonly number[], p: number) => [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil((p / 100) * xs.length) - 1)]!;

async function memory(pid: number): Promise<{ rss: number; hwm: number; anon: number; file: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
}

function sysbench(node: RigNode, command: 'prepare' | 'run', args: string[] = []): Promise<string> {
  const common = ['oltp_write_only', '--db-driver=mysql', `--mysql-socket=${node.socket}`, '--mysql-user=root', `--mysql-password=${CREDENTIALS.root}`, '--mysql-db=sbtest', `--tables=${TABLES}`, `--table-size=${TABLE_ROWS}`];
  return execFileP('sysbench', [...common, ...args, command], { maxBuffer: 16 * 1024 * 1024 }).then((r) => r.stdout);
}

/** Waits until the archive holds every transaction the server has logged (rotating the open file first). */
async function archivedUpToNow(node: RigNode): Promise<void> {
  await node.sql('FLUSH BINARY LOGS');
  const [{ g }] = await node.sql<{ g: string }>('SELECT @@GLOBAL.gtid_binlog_pos AS g');
  await waitUntil(async () => ((await (await node.http('/status')).json()) as any).binlog_archive?.last_archived?.end_state === g, 'the archive to catch up', 120_000);
}

/** Every index record in the store: when each file's oldest transaction committed and when the file arrived. */
async function indexRecords(rgw: Rgw): Promise<{ name: string; size: number; firstEventTime: number | null; archivedAt: number }[]> {
  const s3 = rgw.client();
  try {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: PREFIX, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((c) => c.Key!).filter((k) => k.endsWith('.json') && k.includes('/binlogs/')));
      token = page.NextContinuationToken;
    } while (token);
    return Promise.all(
      keys.map(async (Key) => {
        const r = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).Body!.transformToString());
        return { name: r.name, size: r.size, firstEventTime: r.firstEventTime, archivedAt: Date.parse(r.archived_at) / 1000 };
      }),
    );
  } finally {
    s3.destroy();
  }
}

async function main(): Promise<void> {
  const rgw = await startRgw();
  const rig = new Rig({
    baseDir: await newBaseDir('archive-bench'),
    ipPrefix: '127.0.7.4',
    agentEnv: { BACKUP_STORE_URL: `s3://${BUCKET}/${PREFIX}`, ...rgw.env(), BINLOG_ARCHIVE_INTERVAL: String(INTERVAL_S) },
  });
  try {
    await rgw.createBucket(BUCKET);
    const primary = rig.node(0);
    await primary.up();
    const pid = primary.sidecar!.pid!;
    const idle = await memory(pid);
    log(`sidecar up, RSS ${f(idle.rss)} MB; sysbench prepare: ${TABLES} tables of ${TABLE_ROWS} rows`);
    await primary.sql('CREATE DATABASE sbtest');
    await sysbench(primary, 'prepare', ['--threads=1']);
    await archivedUpToNow(primary);
    const before = await memory(pid);
    log(`prepared and archived, sidecar RSS ${f(before.rss)} MB (peak ${f(before.hwm)}); ${LOAD_S} s of oltp_write_only, ${THREADS} threads, interval ${INTERVAL_S} s`);

    const loadStart = Date.now() / 1000;
    let loading = true;
    const samples: Sample[] = [];
    const sampling = (async () => {
      for (let next = Date.now(); loading; next += 1000) {
        const page = await (await primary.http('/metrics')).text();
        const m = await memory(pid);
        samples.push({
          t: Date.now() / 1000 - loadStart,
          lag_s: gauge(page, 'mysql_agent_binlog_archive_lag_seconds'),
          files_waiting: gauge(page, 'mysql_agent_binlog_archive_files_waiting'),
          bytes_archived: gauge(page, 'mysql_agent_binlog_archive_bytes'),
          rss_mb: m.rss,
          anon_mb: m.anon,
          file_mb: m.file,
          heap_used_mb: mb(gauge(page, 'mysql_agent_nodejs_heap_size_used_bytes')),
          external_mb: mb(gauge(page, 'mysql_agent_nodejs_external_memory_bytes')),
        });
        await delay(Math.max(0, next + 1000 - Date.now()));
      }
    })();
    const out = await sysbench(primary, 'run', [`--threads=${THREADS}`, `--time=${LOAD_S}`]).finally(() => (loading = false));
    await sampling;
    const loadEnd = Date.now() / 1000;
    const tps = Number(/transactions:\s+\d+\s+\(([\d.]+) per sec/.exec(out)?.[1]);
    const transactions = Number(/transactions:\s+(\d+)/.exec(out)?.[1]);
    await archivedUpToNow(primary);
    const after = await memory(pid);

    const lags = samples.map((s) => s.lag_s).filter((x): x is number => x !== null && Number.isFinite(x));
    const waiting = samples.map((s) => s.files_waiting ?? 0);
    const startBytes = samples[0]?.bytes_archived ?? 0;
    const bytesDuringLoad = (samples.at(-1)?.bytes_archived ?? 0) - startBytes;
    // Files whose oldest transaction came from the load; the last one we rotated ourselves above.
    const loadFiles = (await indexRecords(rgw)).filter((r) => r.firstEventTime !== null && r.firstEventTime >= Math.floor(loadStart) && r.firstEventTime <= loadEnd);
    const fileLags = loadFiles.map((r) => r.archivedAt - r.firstEventTime!);
    const limit = INTERVAL_S + 10;
    const maxLag = Math.max(...lags);
    const maxFileLag = Math.max(...fileLags);
    const largest = samples.reduce((a, b) => (b.rss_mb > a.rss_mb ? b : a));
    const date = new Date().toISOString();
    const summary = {
      date,
      host: hostname(),
      machine: `${cpus().length} × ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GB`,
      interval_s: INTERVAL_S,
      load_s: LOAD_S,
      threads: THREADS,
      tables: TABLES,
      table_rows: TABLE_ROWS,
      sysbench: { transactions, tps },
      lag_gauge: { samples: lags.length, max_s: maxLag, p95_s: percentile(lags, 95), median_s: percentile(lags, 50) },
      lag_from_index: { files: fileLags.length, max_s: maxFileLag, p95_s: percentile(fileLags, 95) },
      files_waiting_max: Math.max(...waiting),
      bytes_archived_during_load: bytesDuringLoad,
      bytes_archived_total: loadFiles.reduce((n, r) => n + r.size, 0),
      sidecar: { idle_rss_mb: idle.rss, before_load_rss_mb: before.rss, peak_rss_mb: after.hwm, end_rss_mb: after.rss, max_sampled_rss_mb: largest.rss_mb, largest_sample: largest },
      targets: { lag_limit_s: limit, lag_met: maxLag <= limit && maxFileLag <= limit, rss_limit_mb: 100, rss_met: after.hwm <= 100 },
      samples,
    };
    const md = [
      `BINLOG_ARCHIVE_INTERVAL ${INTERVAL_S} s; sysbench oltp_write_only, ${THREADS} threads, ${TABLES} tables × ${TABLE_ROWS} rows, ${LOAD_S} s (${ROUNDS} intervals and a half) against a rig primary (MariaDB ${(await primary.sql<{ v: string }>('SELECT VERSION() AS v'))[0]!.v}); one Ceph RGW (memstore OSD) on this machine; ${summary.machine}; ${date.slice(0, 10)}.`,
      '',
      '| measured | value | target |',
      '|---|---|---|',
      `| sysbench oltp_write_only | ${f(tps, 1)} transactions/s (${transactions} in ${LOAD_S} s) | – |`,
      `| lag gauge, sampled every 1 s | max ${f(maxLag, 0)} s, p95 ${f(summary.lag_gauge.p95_s, 0)} s (${lags.length} samples) | ≤ ${limit} s |`,
      `| lag from the index (archived_at − oldest commit) | max ${f(maxFileLag, 1)} s, p95 ${f(summary.lag_from_index.p95_s, 1)} s (${fileLags.length} files) | ≤ ${limit} s |`,
      `| files waiting | max ${summary.files_waiting_max} | – |`,
      `| bytes archived | ${f(summary.bytes_archived_total / 1e6, 1)} MB in ${fileLags.length} files (${f(bytesDuringLoad / 1e6, 1)} MB while loading) | – |`,
      `| sidecar peak RSS (VmHWM) | ${f(after.hwm, 1)} MB (idle ${f(idle.rss, 1)} MB, before the load ${f(before.rss, 1)} MB) | ≤ 100 MB |`,
      `| its largest sample | ${f(largest.rss_mb, 1)} MB: ${f(largest.anon_mb, 1)} anonymous (V8 heap used ${f(largest.heap_used_mb ?? NaN, 1)}, external ${f(largest.external_mb ?? NaN, 1)}), ${f(largest.file_mb, 1)} file pages | – |`,
      '',
      `Lag target ${summary.targets.lag_met ? 'met' : 'NOT met'}; RSS target ${summary.targets.rss_met ? 'met' : 'NOT met'}.`,
    ].join('\n');
    await writeReport(OUT, `archive-${INTERVAL_S}s`, summary, md);
  } finally {
    await rig.destroy();
    await rgw.stop();
  }
}

await main();
