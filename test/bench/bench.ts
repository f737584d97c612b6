/**
 * `npm run bench`: clone speed and memory of the agent against the raw pipe and the tutorial's
 * ncat path, measured in one run after an uncounted warm-up clone, interleaved in rotated order
 * (A B C, B C A, C A B, …), page cache dropped before each clone. A is the agent (sidecar
 * serving, `mysql-agent init` receiving, then prepare); B is `mariadb-backup --backup
 * --stream=xbstream | mbstream -x` (the limit of this machine); C is the tutorial's
 * `ncat --listen --send-only -c "<backup>"` / `ncat --recv-only | mbstream -x`; T is A over TLS
 * (a second sidecar on the primary with TLS_DIR, on BACKUP_PORT 3308; init with its own
 * certificate, from test/tls/pki.ts): T/A per round is what TLS costs.
 *
 *   npm run bench -- [--size GB] [--rounds N] [--out DIR]
 *
 * Writes bench-<size>gb.json and .md into DIR (default test/bench/results) and prints the table.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { CREDENTIALS, REPO, Rig, type RigNode } from '../rig/rig.js';
import { benchArgs, dropCaches, fixed as f, loadDataset, median, procUsage, run, timed, watch, writeReport } from './measure.js';
import { newBaseDir, waitUntil } from '../rig/helpers.js';
import { tlsGet } from '../tls/client.js';
import { type Pki, createPki } from '../tls/pki.js';

const { sizeGb: SIZE_GB, rounds: ROUNDS, out: OUT } = benchArgs(null, '1');
const NCAT_PORT = 3399;
/** The primary's second sidecar, serving over TLS (variant T). */
const TLS_PORT = 3308;
const log = (msg: string) => console.error(`[bench] ${msg}`);

type Variant = 'A' | 'B' | 'C' | 'T';
/** TLS_DIR of each node (variant T). */
interface TlsSetup {
  readonly pki: Pki;
  readonly dirs: readonly string[];
  readonly sidecar: ChildProcess;
}
interface Sample {
  readonly variant: Variant;
  readonly round: number;
  readonly cold: boolean;
  /** Stream + extract, seconds. */
  readonly stream_s: number;
  readonly prepare_s: number;
  /** A only: flushing the clone to disk before it is moved in. */
  readonly sync_s?: number;
  /** From the start of the clone until the new replica replicates (A: /readyz). */
  readonly ready_s: number;
  readonly bytes: number;
  readonly init_cpu_s?: number;
  readonly init_peak_rss_mb?: number;
  readonly sidecar_cpu_s?: number;
  readonly sidecar_peak_rss_mb?: number;
}

async function resetTarget(node: RigNode): Promise<void> {
  await rm(node.dataDir, { recursive: true, force: true });
  await mkdir(node.dataDir, { recursive: true });
}

/** B and C end like the tutorial: start the server and point it at the primary by hand. */
async function manualReplicaStart(node: RigNode): Promise<void> {
  await node.startServer();
  const [file, pos] = (await readFile(join(node.dataDir, 'xtrabackup_binlog_info'), 'utf8')).trim().split('\n').at(-1)!.split('\t');
  await node.sql(
    'CHANGE MASTER TO MASTER_HOST=?, MASTER_PORT=3306, MASTER_USER=?, MASTER_PASSWORD=?, MASTER_LOG_FILE=?, MASTER_LOG_POS=?, MASTER_CONNECT_RETRY=10',
    [node.rig.node(0).ip, CREDENTIALS.replicationUser, CREDENTIALS.replication, file, Number(pos)],
  );
  await node.sql('START SLAVE');
  await waitUntil(async () => {
    const s = await node.replicaStatus();
    return s?.Slave_IO_Running === 'Yes' && s?.Slave_SQL_Running === 'Yes';
  }, 'manual replication to run', 120_000);
}

/** Whether something listens on ip:port, from /proc/net/tcp (state 0A is LISTEN). */
async function listening(ip: string, port: number): Promise<boolean> {
  const hex = ip.split('.').reverse().map((o) => Number(o).toString(16).padStart(2, '0')).join('').toUpperCase();
  const local = `${hex}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return (await readFile('/proc/net/tcp', 'utf8')).split('\n').some((l) => l.includes(` ${local} `) && / 0A /.test(l));
}

function backupArgs(primary: RigNode, tmp: string): string[] {
  return [`--defaults-file=${primary.dir}/my.cnf`, '--backup', '--slave-info', '--stream=xbstream', `--host=${primary.ip}`, '--port=3306', `--user=${CREDENTIALS.agentUser}`, `--target-dir=${tmp}`];
}

/** The agent: plain (A), or over TLS from the primary's TLS sidecar (T). */
async function variantAgent(rig: Rig, round: number, cold: boolean, tls: TlsSetup | null): Promise<Sample> {
  const primary = rig.node(0);
  const node = rig.node(1);
  await resetTarget(node);
  await node.prepareDirs();
  const sender = tls ? tls.sidecar : primary.sidecar!;
  const sidecarBefore = await procUsage(sender.pid!);
  const started = performance.now();
  const child = node.spawnInit(tls ? { TLS_DIR: tls.dirs[1]!, BACKUP_PORT: String(TLS_PORT) } : {});
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const usage = await watch(child);
  const variant = tls ? 'T' : 'A';
  if (usage.code !== 0) throw new Error(`${variant}: init exited ${usage.code}: ${out.slice(-800)}`);
  const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, number | string>);
  const stream = lines.find((l) => l.msg === 'stream complete and verified')!;
  const prepare = lines.find((l) => l.msg === 'clone prepared')!;
  const sync = lines.find((l) => l.msg === 'clone flushed to disk');
  const sidecarAfter = await procUsage(sender.pid!);
  // As in a pod: the server and the sidecar containers start together once init is done.
  node.startSidecar();
  await node.startServer();
  await node.waitFor('/readyz', 180_000);
  const ready = (performance.now() - started) / 1000;
  await node.down();
  return {
    variant,
    round,
    cold,
    stream_s: Number(stream.duration_ms) / 1000,
    prepare_s: Number(prepare.duration_ms) / 1000,
    sync_s: Number(sync?.duration_ms ?? 0) / 1000,
    ready_s: ready,
    bytes: Number(stream.bytes),
    init_cpu_s: usage.cpu,
    init_peak_rss_mb: usage.peakMb,
    sidecar_cpu_s: (sidecarAfter?.cpu ?? 0) - (sidecarBefore?.cpu ?? 0),
    sidecar_peak_rss_mb: sidecarAfter?.peakMb ?? 0,
  };
}

async function variantPipe(rig: Rig, variant: 'B' | 'C', round: number, cold: boolean, bytes: number): Promise<Sample> {
  const primary = rig.node(0);
  const node = rig.node(1);
  await resetTarget(node);
  await node.prepareDirs();
  // What the tutorial's init container writes before the clone.
  await copyFile(join(node.configMapDir, 'replica.cnf'), join(node.confDir, 'replica.cnf'));
  await writeFile(join(node.confDir, 'server-id.cnf'), '[mysqld]\nserver-id=101\n');
  const tmp = join(rig.options.baseDir, 'bench-tmp');
  await mkdir(tmp, { recursive: true });
  const env = { ...process.env, MYSQL_PWD: CREDENTIALS.agent };
  let sender: ChildProcess | null = null;
  if (variant === 'C') {
    // The tutorial's sender: ncat runs the backup for the one connection it accepts.
    const command = ['mariadb-backup', ...backupArgs(primary, tmp)].join(' ');
    sender = spawn('ncat', ['--listen', '--send-only', '--max-conns=1', primary.ip, String(NCAT_PORT), '-c', command], { env, stdio: 'ignore' });
    // A probe connection would make ncat run the backup: watch the socket table instead.
    await waitUntil(() => listening(primary.ip, NCAT_PORT), 'ncat to listen');
  }
  const source =
    variant === 'B'
      ? `mariadb-backup ${backupArgs(primary, tmp).join(' ')}`
      : `ncat --recv-only ${primary.ip} ${NCAT_PORT}`;
  const started = performance.now();
  const [, stream] = await timed(() => run('bash', ['-o', 'pipefail', '-c', `${source} | mbstream -x -C ${node.dataDir}`], env));
  const [, prepare] = await timed(() => run('mariadb-backup', ['--prepare', `--target-dir=${node.dataDir}`]));
  sender?.kill('SIGKILL');
  await manualReplicaStart(node);
  const ready = (performance.now() - started) / 1000;
  await node.stopServer();
  await rm(tmp, { recursive: true, force: true });
  return { variant, round, cold, stream_s: stream, prepare_s: prepare, ready_s: ready, bytes };
}


function report(samples: Sample[], datasetBytes: number, coldRuns: boolean) {
  const by = (v: Variant) => samples.filter((s) => s.variant === v);
  const rounds = [...new Set(samples.map((s) => s.round))];
  const ratio = (a: Variant, b: Variant) =>
    rounds.map((r) => by(a).find((s) => s.round === r)!.stream_s / by(b).find((s) => s.round === r)!.stream_s);
  const a = by('A');
  const t = by('T');
  const summary = {
    date: new Date().toISOString(),
    machine: { host: hostname(), cpus: cpus().length, cpu_model: cpus()[0]?.model, mem_gb: +(totalmem() / 2 ** 30).toFixed(1) },
    dataset_bytes: datasetBytes,
    stream_bytes: a[0]!.bytes,
    rounds: rounds.length,
    page_cache_dropped: coldRuns,
    variants: Object.fromEntries(
      (['A', 'B', 'C', 'T'] as const).map((v) => {
        const s = by(v);
        const stream = s.map((x) => x.stream_s);
        return [
          v,
          {
            stream_s: { median: median(stream), min: Math.min(...stream), max: Math.max(...stream) },
            stream_mb_s: median(s.map((x) => x.bytes / 1e6 / x.stream_s)),
            prepare_s: median(s.map((x) => x.prepare_s)),
            ready_s: median(s.map((x) => x.ready_s)),
          },
        ];
      }),
    ),
    ratio_a_b: ratio('A', 'B'),
    ratio_a_c: ratio('A', 'C'),
    ratio_t_a: ratio('T', 'A'),
    tls: {
      init_peak_rss_mb: Math.max(...t.map((x) => x.init_peak_rss_mb!)),
      sidecar_peak_rss_mb: Math.max(...t.map((x) => x.sidecar_peak_rss_mb!)),
      init_cpu_s: median(t.map((x) => x.init_cpu_s!)),
      sidecar_cpu_s: median(t.map((x) => x.sidecar_cpu_s!)),
    },
    agent: {
      sync_s: median(a.map((x) => x.sync_s ?? 0)),
      init_cpu_s: median(a.map((x) => x.init_cpu_s!)),
      init_peak_rss_mb: Math.max(...a.map((x) => x.init_peak_rss_mb!)),
      sidecar_cpu_s: median(a.map((x) => x.sidecar_cpu_s!)),
      sidecar_peak_rss_mb: Math.max(...a.map((x) => x.sidecar_peak_rss_mb!)),
      ready_added_s: median(a.map((x) => x.ready_s)) - median(by('B').map((x) => x.ready_s)),
    },
    samples,
  };
  const v = summary.variants as Record<Variant, { stream_s: { median: number; min: number; max: number }; stream_mb_s: number; prepare_s: number; ready_s: number }>;
  const md = [
    `Dataset ${f(datasetBytes / 1e9)} GB (stream ${f(summary.stream_bytes / 1e9)} GB), ${rounds.length} interleaved rounds (order rotated, after a warm-up clone), page cache ${coldRuns ? 'dropped before each clone' : 'NOT dropped (no permission)'}; ${summary.machine.cpus} × ${summary.machine.cpu_model}, ${summary.date.slice(0, 10)}.`,
    '',
    '| variant | stream + extract s (median, min–max) | MB/s | prepare s | clone start → replicating s |',
    '|---|---|---|---|---|',
    ...(['A', 'B', 'C', 'T'] as const).map(
      (k) =>
        `| ${{ A: 'A agent (sidecar → init)', B: 'B raw pipe `mariadb-backup \\| mbstream`', C: 'C tutorial `ncat \\| mbstream`', T: 'T agent over TLS' }[k]} | ${f(v[k].stream_s.median)} (${f(v[k].stream_s.min)}–${f(v[k].stream_s.max)}) | ${f(v[k].stream_mb_s, 0)} | ${f(v[k].prepare_s)} | ${f(v[k].ready_s)} |`,
    ),
    '',
    `A/B per round: ${summary.ratio_a_b.map((x) => f(x, 3)).join(', ')}; A/C per round: ${summary.ratio_a_c.map((x) => f(x, 3)).join(', ')}.`,
    `T/A (TLS over plain HTTP) per round: ${summary.ratio_t_a.map((x) => f(x, 3)).join(', ')} (median ${f(median(summary.ratio_t_a), 3)}); over TLS init ${f(summary.tls.init_cpu_s)} CPU s, peak RSS ${f(summary.tls.init_peak_rss_mb, 0)} MB; sidecar ${f(summary.tls.sidecar_cpu_s)} CPU s per backup, peak RSS ${f(summary.tls.sidecar_peak_rss_mb, 0)} MB.`,
    `Agent processes: init ${f(summary.agent.init_cpu_s)} CPU s, peak RSS ${f(summary.agent.init_peak_rss_mb, 0)} MB; sidecar ${f(summary.agent.sidecar_cpu_s)} CPU s per backup, peak RSS ${f(summary.agent.sidecar_peak_rss_mb, 0)} MB. Time to ready added by the agent over B with a manual CHANGE MASTER: ${f(summary.agent.ready_added_s)} s, of which ${f(summary.agent.sync_s)} s flushing the clone to disk before it counts (B and C do not).`,
  ].join('\n');
  return { summary, md };
}

/** A second sidecar on the primary serving over TLS, and each node's certificate. */
async function startTls(rig: Rig): Promise<TlsSetup> {
  const pki = await createPki();
  const dirs = [];
  for (const n of [0, 1]) dirs.push(await pki.issue({ name: `mysql-${n}`, ips: [rig.node(n).ip] }));
  const primary = rig.node(0);
  const sidecar = rig.spawnAgent(['sidecar'], primary.agentEnv({ TLS_DIR: dirs[0]!, BACKUP_PORT: String(TLS_PORT) }), join(primary.dir, 'sidecar-tls.log'));
  await waitUntil(async () => (await tlsGet(`https://${primary.ip}:${TLS_PORT}/readyz`, { ca: pki.caCert })).status === 200, 'the TLS sidecar to be ready');
  return { pki, dirs, sidecar };
}

async function main(): Promise<void> {
  const rig = new Rig({ baseDir: await newBaseDir('bench'), ipPrefix: '127.0.3.1' });
  let tls: TlsSetup | null = null;
  const stop = async () => {
    await rig.destroy();
    await tls?.pki.destroy();
    process.exit(130);
  };
  process.once('SIGINT', stop);
  try {
    log(`bringing up the primary and loading ${SIZE_GB} GB`);
    await rig.node(0).up();
    const dataset = await loadDataset(rig.node(0), SIZE_GB);
    log(`dataset ${f(dataset / 1e9)} GB loaded`);
    tls = await startTls(rig);
    // The load leaves the primary flushing dirty pages: an uncounted clone lets that settle
    // rather than slow whichever variant goes first.
    await variantPipe(rig, 'B', 0, await dropCaches(), 0);
    log('warm-up clone done (not counted)');
    const samples: Sample[] = [];
    let coldRuns = true;
    const variants = ['A', 'B', 'C', 'T'] as const;
    for (let round = 1; round <= ROUNDS; round++) {
      // Rotated (A B C T, B C T A, …) so that no variant always follows the same one.
      const shift = (round - 1) % variants.length;
      for (const variant of [...variants.slice(shift), ...variants.slice(0, shift)]) {
        const cold = await dropCaches();
        coldRuns &&= cold;
        const bytes = samples.find((s) => s.variant === 'A')?.bytes ?? 0;
        const sample =
          variant === 'A' || variant === 'T' ? await variantAgent(rig, round, cold, variant === 'T' ? tls : null) : await variantPipe(rig, variant, round, cold, bytes);
        log(`round ${round} ${variant}: stream ${f(sample.stream_s)} s, prepare ${f(sample.prepare_s)} s, ready ${f(sample.ready_s)} s`);
        samples.push(sample);
      }
    }
    const { summary, md } = report(samples, dataset, coldRuns);
    const base = await writeReport(OUT, `bench-${SIZE_GB}gb`, summary, md);
    log(`wrote ${base}.json and ${base}.md`);
  } finally {
    await rig.destroy();
    await tls?.pki.destroy();
  }
}

if (!existsSync(join(REPO, 'dist/cli.js'))) {
  console.error('bench: dist/cli.js is missing: run `npm run build` first (npm run bench does)');
  process.exit(2);
}
await main();
