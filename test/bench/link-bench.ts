/**
 * `npm run bench -- --link [--size GB] [--rounds N]`: clones across a network the run makes (two
 * namespaces joined by a veth link, test/bench/netns.ts), the primary (server and sidecar) in one,
 * the receiver in the other, with the sender's end shaped by `tc` (a 1 Gbit/s token bucket) and
 * then unshaped. Per link, interleaved in rotated order with the page cache dropped before each:
 * A the agent with CLONE_COMPRESSION=zstd, A0 without, auto as it decides, C the tutorial's `ncat` pair across the
 * same link, Z that pair with `zstd -1 -T2` and `zstd -d` around ncat (the compressed pipeline of the
 * peers, in C: what compression can gain on this machine at all); B the raw local pipe once per
 * round (no network: the disks' limit). Then once per
 * link the receiver's cap, CLONE_MAX_RATE, held over a stream of about 30 s. Measured: stream +
 * extract (init's own figure for A and A0), each agent process's CPU and peak RSS.
 *
 * Writes link-<size>gb.json and .md into --out (default test/bench/results) and prints the table.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { cpus, hostname } from 'node:os';
import { join } from 'node:path';
import { CREDENTIALS, REPO, Rig, type RigNode } from '../rig/rig.js';
import { newBaseDir, waitUntil } from '../rig/helpers.js';
import { benchArgs, dropCaches, fixed as f, loadDataset, median, procUsage, run, timed, watch, writeReport } from './measure.js';
import { type Link, createLink } from './netns.js';

const { sizeGb: SIZE_GB, rounds: ROUNDS, out: OUT } = benchArgs('link', '1');
const PREFIX = '10.213.0.1';
const NCAT_PORT = 3399;
/** The shaped link's rate, as tc reads it, and in MB/s. */
const SHAPED = { tc: '1gbit', mbS: 125 };
/** CLONE_MAX_RATE for the cap run: about 30 s for a 1 GB dataset's stream. */
const CAP_MB_S = Math.max(5, Math.round((SIZE_GB * 1.1e3) / 30));
const log = (msg: string) => console.error(`[bench --link] ${msg}`);

type Variant = 'A' | 'A0' | 'auto' | 'C' | 'Z' | 'B' | 'cap';
type LinkName = '1 Gbit/s' | 'unshaped';
interface Sample {
  readonly link: LinkName;
  readonly variant: Variant;
  readonly round: number;
  readonly stream_s: number;
  readonly bytes: number;
  readonly wire_bytes?: number;
  readonly init_cpu_s?: number;
  readonly init_peak_rss_mb?: number;
  readonly sidecar_cpu_s?: number;
  readonly sidecar_peak_rss_mb?: number;
  /** Between init's first and last progress lines (every 10 s): the steady rate, start-up left out. */
  readonly steady_mb_s?: number;
  /** auto: what the link timed at, and what init chose. */
  readonly auto?: { readonly link_mb_s: number | null; readonly busy: number | null; readonly compression: string };
}

// B and C run the tool as the tutorial does, as root over the server's socket.
const env = { ...process.env, MYSQL_PWD: CREDENTIALS.root };
const backupCommand = (primary: RigNode, tmp: string) =>
  ['mariadb-backup', `--defaults-file=${primary.dir}/my.cnf`, '--backup', '--slave-info', '--stream=xbstream', `--socket=${primary.socket}`, '--user=root', `--target-dir=${tmp}`];

async function resetTarget(node: RigNode): Promise<void> {
  await rm(node.dataDir, { recursive: true, force: true });
  await mkdir(node.dataDir, { recursive: true });
  await node.prepareDirs();
}

async function agentClone(rig: Rig, net: Link, link: LinkName, variant: 'A' | 'A0' | 'auto' | 'cap', round: number): Promise<Sample> {
  const receiver = rig.node(1);
  const sidecar = rig.node(0).sidecar!;
  await resetTarget(receiver);
  const before = await procUsage(sidecar.pid!);
  const sentBefore = await net.sentBytes();
  const child = receiver.spawnInit({
    CLONE_COMPRESSION: variant === 'A' ? 'zstd' : variant === 'auto' ? 'auto' : 'none',
    ...(variant === 'cap' ? { CLONE_MAX_RATE: String(CAP_MB_S) } : {}),
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const usage = await watch(child);
  if (usage.code !== 0) throw new Error(`${variant}: init exited ${usage.code}: ${out.slice(-800)}`);
  const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, number | string>);
  const stream = lines.find((l) => l.msg === 'stream complete and verified')!;
  const after = await procUsage(sidecar.pid!);
  const ticks = lines.filter((l) => String(l.msg).startsWith('clone progress'));
  const first = ticks[0];
  const last = ticks.at(-1);
  const steady = first && last && last !== first ? (Number(last.bytes) - Number(first.bytes)) / 1e6 / ((Date.parse(String(last.time)) - Date.parse(String(first.time))) / 1000) : undefined;
  const chose = lines.find((l) => l.msg === 'CLONE_COMPRESSION=auto: timed the link');
  return {
    ...(steady === undefined ? {} : { steady_mb_s: steady }),
    ...(chose ? { auto: { link_mb_s: chose.link_mb_s as number | null, busy: (chose.busy as number | null) ?? null, compression: String(chose.compression) } } : {}),
    link,
    variant,
    round,
    stream_s: Number(stream.duration_ms) / 1000,
    bytes: Number(stream.bytes),
    wire_bytes: (await net.sentBytes()) - sentBefore,
    init_cpu_s: usage.cpu,
    init_peak_rss_mb: usage.peakMb,
    sidecar_cpu_s: (after?.cpu ?? 0) - (before?.cpu ?? 0),
    sidecar_peak_rss_mb: after?.peakMb ?? 0,
  };
}

/** Whether anything in the namespace listens on NCAT_PORT at `address`: its socket table, not a probe. */
async function listening(netns: string, address: string): Promise<boolean> {
  const hex = `${address.split('.').reverse().map((o) => Number(o).toString(16).padStart(2, '0')).join('').toUpperCase()}:${NCAT_PORT.toString(16).toUpperCase().padStart(4, '0')}`;
  const table = await new Promise<string>((resolve) => execFile('ip', ['netns', 'exec', netns, 'cat', '/proc/net/tcp'], (err, out) => resolve(err ? '' : out)));
  return table.split('\n').some((l) => l.includes(` ${hex} `) && / 0A /.test(l));
}

/** C across the link (ncat in each namespace), or B on this side (no network). */
async function pipeClone(rig: Rig, link: LinkName, variant: 'B' | 'C' | 'Z', round: number, bytes: number, net: Link): Promise<Sample> {
  const primary = rig.node(0);
  const receiver = rig.node(1);
  await resetTarget(receiver);
  const tmp = join(rig.options.baseDir, 'bench-tmp');
  await mkdir(tmp, { recursive: true });
  let sender: ChildProcess | null = null;
  const zstd = variant === 'Z';
  if (variant !== 'B') {
    const backup = `${backupCommand(primary, tmp).join(' ')}${zstd ? ' | zstd -1 -T2 -q -c' : ''}`;
    sender = spawn('ip', ['netns', 'exec', net.sender.netns, 'ncat', '--listen', '--send-only', '--max-conns=1', net.sender.address, String(NCAT_PORT), '-c', zstd ? `bash -o pipefail -c '${backup}'` : backup], {
      env,
      stdio: 'ignore',
    });
    // A probe connection would make ncat run the backup: the namespace's socket table says it listens.
    await waitUntil(() => listening(net.sender.netns, net.sender.address), 'ncat to listen');
  }
  const script =
    variant === 'B'
      ? `${backupCommand(primary, tmp).join(' ')} | mbstream -x -C ${receiver.dataDir}`
      : `ip netns exec ${net.receiver.netns} bash -o pipefail -c 'ncat --recv-only ${net.sender.address} ${NCAT_PORT} |${zstd ? ' zstd -d -q -c |' : ''} mbstream -x -C ${receiver.dataDir}'`;
  const sentBefore = await net.sentBytes();
  const [, seconds] = await timed(() => run('bash', ['-o', 'pipefail', '-c', script], env));
  const sent = (await net.sentBytes()) - sentBefore;
  // ncat serves one connection at a time, not one in all: until it is gone, the next round's
  // receiver could reach it and get this round's kind of stream (CI saw Z's zstd -d fed C's raw one).
  if (sender) {
    const gone = sender.exitCode !== null || sender.signalCode !== null ? Promise.resolve() : new Promise((r) => sender!.once('exit', r));
    sender.kill('SIGKILL');
    await gone;
    await waitUntil(async () => !(await listening(net.sender.netns, net.sender.address)), 'ncat to stop listening');
  }
  await rm(tmp, { recursive: true, force: true });
  // ncat exits 0 when the tool it runs fails, and mbstream on an empty stream: a clone that is not there is not a time.
  const files = await readdir(receiver.dataDir);
  if (!files.some((f) => /^(xtrabackup|mariadb_backup)_checkpoints$/.test(f))) throw new Error(`${variant}: the clone lacks its checkpoints file (${files.join(' ') || 'nothing extracted'})`);
  return { link, variant, round, stream_s: seconds, bytes, ...(variant !== 'B' ? { wire_bytes: sent } : {}) };
}


function report(samples: Sample[], datasetBytes: number) {
  const of = (link: LinkName, v: Variant) => samples.filter((s) => s.link === link && s.variant === v);
  const perRound = (link: LinkName, a: Variant, b: Variant) =>
    of(link, a).map((x) => x.stream_s / (of(link, b).find((y) => y.round === x.round) ?? of('unshaped', b).find((y) => y.round === x.round))!.stream_s);
  const links: LinkName[] = ['1 Gbit/s', 'unshaped'];
  const row = (link: LinkName, v: Variant, label: string) => {
    const s = of(link, v);
    if (s.length === 0) return null;
    const t = s.map((x) => x.stream_s);
    const wire = s.find((x) => x.wire_bytes !== undefined);
    return `| ${link} | ${label} | ${f(median(t))} (${f(Math.min(...t))}–${f(Math.max(...t))}) | ${f(median(s.map((x) => x.bytes / 1e6 / x.stream_s)), 0)} | ${wire ? f(median(s.map((x) => x.wire_bytes! / 1e9))) : '—'} | ${s[0]!.init_cpu_s === undefined ? '—' : `${f(median(s.map((x) => x.init_cpu_s!)))} / ${f(median(s.map((x) => x.sidecar_cpu_s!)))}`} | ${s[0]!.init_peak_rss_mb === undefined ? '—' : `${f(Math.max(...s.map((x) => x.init_peak_rss_mb!)), 0)} / ${f(Math.max(...s.map((x) => x.sidecar_peak_rss_mb!)), 0)}`} |`;
  };
  const ratios = Object.fromEntries(
    links.map((l) => [
      l,
      {
        a_c: perRound(l, 'A', 'C'),
        a_a0: perRound(l, 'A', 'A0'),
        a0_c: perRound(l, 'A0', 'C'),
        a0_b: perRound(l, 'A0', 'B'),
        z_c: perRound(l, 'Z', 'C'),
        a_z: perRound(l, 'A', 'Z'),
        // auto against the faster of A and A0 in the same round.
        auto_best: of(l, 'auto').map((x) => x.stream_s / Math.min(...(['A', 'A0'] as const).map((v) => of(l, v).find((y) => y.round === x.round)!.stream_s))),
      },
    ]),
  ) as Record<LinkName, Record<'a_c' | 'a_a0' | 'a0_c' | 'a0_b' | 'z_c' | 'a_z' | 'auto_best', number[]>>;
  const caps = links.flatMap((l) => of(l, 'cap').map((s) => ({ link: l, mb_s: s.steady_mb_s ?? s.bytes / 1e6 / s.stream_s, over_s: s.stream_s })));
  const summary = {
    date: new Date().toISOString(),
    machine: { host: hostname(), cpus: cpus().length, cpu_model: cpus()[0]?.model },
    dataset_bytes: datasetBytes,
    stream_bytes: of('unshaped', 'A0')[0]?.bytes ?? 0,
    rounds: ROUNDS,
    shaped: SHAPED,
    cap_mb_s: CAP_MB_S,
    ratios,
    caps,
    samples,
  };
  const labels: Record<Variant, string> = {
    A: 'A agent, zstd on the wire',
    A0: 'A0 agent, raw',
    auto: 'agent, CLONE_COMPRESSION=auto',
    C: 'C tutorial `ncat` pair',
    Z: 'Z `ncat` pair with `zstd -1 -T2` / `zstd -d`',
    B: 'B raw local pipe (no network)',
    cap: `A0 with CLONE_MAX_RATE=${CAP_MB_S}`,
  };
  const list = (xs: number[]) => xs.map((x) => f(x, 3)).join(', ');
  const md = [
    `Dataset ${f(datasetBytes / 1e9)} GB (stream ${f(summary.stream_bytes / 1e9)} GB), ${ROUNDS} interleaved rounds per link (order rotated), page cache dropped before each clone; sender and receiver in two network namespaces joined by veth, the sender's end \`tc tbf rate ${SHAPED.tc}\` or unshaped; ${summary.machine.cpus} × ${summary.machine.cpu_model}, ${summary.date.slice(0, 10)}.`,
    '',
    '| link | variant | stream + extract s (median, min–max) | MB/s of xbstream | GB on the link (headers included) | CPU s init / sidecar | peak RSS MB init / sidecar |',
    '|---|---|---|---|---|---|---|',
    ...links.flatMap((l) => (['A', 'A0', 'auto', 'C', 'Z', 'B', 'cap'] as const).map((v) => row(l, v, labels[v]))).filter((r) => r !== null),
    '',
    ...links.map(
      (l) =>
        `${l}: A/C per round ${list(ratios[l].a_c)}; A/A0 ${list(ratios[l].a_a0)}; A0/C ${list(ratios[l].a0_c)}; A0/B ${list(ratios[l].a0_b)}; Z/C ${list(ratios[l].z_c)}; A/Z ${list(ratios[l].a_z)}; auto / faster of A and A0 ${list(ratios[l].auto_best)} (auto chose ${of(l, 'auto').map((x) => `${x.auto?.compression} at ${x.auto?.link_mb_s} MB/s, busy ${x.auto?.busy}`).join(', ')}).`,
    ),
    `CLONE_MAX_RATE=${CAP_MB_S} (between init's first and last progress lines of a ${caps.map((c) => f(c.over_s, 0)).join(' / ')} s stream): ${caps.map((c) => `${c.link} ${f(c.mb_s, 1)} MB/s (${f((c.mb_s / CAP_MB_S - 1) * 100, 1)} %)`).join('; ')}.`,
  ].join('\n');
  return { summary, md };
}

/** Brings up the primary in the sender's namespace (init, server, sidecar) and waits until its sidecar is ready. */
async function upInNamespace(primary: RigNode, net: Link): Promise<void> {
  const r = await primary.init({ PEER_PROBE_COUNT: '1' });
  if (r.code !== 0) throw new Error(`primary init exited ${r.code}`);
  await primary.startServer();
  primary.startSidecar();
  const url = `http://${net.sender.address}:3307/readyz`;
  await waitUntil(() => run('ip', ['netns', 'exec', net.sender.netns, 'curl', '-sf', '-o', '/dev/null', url]).then(() => true, () => false), 'the primary sidecar to be ready', 120_000).catch(async (err: unknown) => {
    throw new Error(`${(err as Error).message}; its log: ${(await readFile(join(primary.dir, 'sidecar.log'), 'utf8').catch(() => '')).slice(-1500)}`);
  });
}

async function main(): Promise<void> {
  const net = await createLink(`ma${process.pid}`, PREFIX);
  const rig = new Rig({ baseDir: await newBaseDir('link-bench'), ipPrefix: PREFIX, netnsOf: (n) => (n === 0 ? net.sender.netns : net.receiver.netns) });
  const stop = async () => {
    await rig.destroy();
    await net.destroy();
    process.exit(130);
  };
  process.once('SIGINT', stop);
  try {
    const primary = rig.node(0);
    await upInNamespace(primary, net);
    log(`loading ${SIZE_GB} GB`);
    const dataset = await loadDataset(primary, SIZE_GB);
    log(`dataset ${f(dataset / 1e9)} GB loaded`);
    // The load leaves the primary flushing dirty pages: an uncounted clone lets that settle.
    await agentClone(rig, net, 'unshaped', 'A0', 0);
    log('warm-up clone done (not counted)');
    const samples: Sample[] = [];
    for (const link of ['1 Gbit/s', 'unshaped'] as const) {
      await net.shape(link === 'unshaped' ? null : SHAPED.tc);
      const variants: Variant[] = link === 'unshaped' ? ['A', 'A0', 'auto', 'C', 'Z', 'B'] : ['A', 'A0', 'auto', 'C', 'Z'];
      for (let round = 1; round <= ROUNDS; round++) {
        const shift = (round - 1) % variants.length;
        for (const variant of [...variants.slice(shift), ...variants.slice(0, shift)]) {
          await dropCaches();
          const bytes = samples.find((s) => s.variant === 'A0')?.bytes ?? 0;
          const sample = variant === 'B' || variant === 'C' || variant === 'Z' ? await pipeClone(rig, link, variant, round, bytes, net) : await agentClone(rig, net, link, variant as 'A' | 'A0' | 'auto', round);
          log(`${link} round ${round} ${variant}: ${f(sample.stream_s)} s`);
          samples.push(sample);
        }
      }
      await dropCaches();
      const capped = await agentClone(rig, net, link, 'cap', 1);
      log(`${link} cap: ${f(capped.stream_s)} s`);
      samples.push(capped);
    }
    const { summary, md } = report(samples, dataset);
    const base = await writeReport(OUT, `link-${SIZE_GB}gb`, summary, md);
    log(`wrote ${base}.json and ${base}.md`);
  } finally {
    await rig.destroy();
    await net.destroy();
  }
}

await main();
