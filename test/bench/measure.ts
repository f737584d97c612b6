/** What both benchmarks measure with: processes' CPU and peak RSS, commands, the page cache, the dataset. */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { REPO, type RigNode } from '../rig/rig.js';

/**
 * Every benchmark's arguments: --size GB, --rounds N, --out DIR, its own flag (`--store`,
 * `--link`, `--archive`: passed on by run.sh) and its own string options with their defaults
 * (`extra`); bad values exit 2 naming them.
 */
export function benchArgs<K extends string = never>(
  flag: string | null,
  defaultSizeGb: string,
  extra: Record<K, string> = {} as Record<K, string>,
): { readonly sizeGb: number; readonly rounds: number; readonly out: string; readonly extra: Record<K, string> } {
  const { values } = parseArgs({
    options: {
      ...(flag ? { [flag]: { type: 'boolean' as const, default: true } } : {}),
      ...Object.fromEntries(Object.entries<string>(extra).map(([k, v]) => [k, { type: 'string' as const, default: v }])),
      size: { type: 'string', default: defaultSizeGb },
      rounds: { type: 'string', default: '3' },
      out: { type: 'string', default: join(REPO, 'test/bench/results') },
    },
  });
  const sizeGb = Number(values.size);
  const rounds = Number(values.rounds);
  if (!(sizeGb > 0) || !(rounds >= 1)) {
    console.error('bench: --size must be a positive number of GB and --rounds at least 1');
    process.exit(2);
  }
  const own = Object.fromEntries(Object.keys(extra).map((k) => [k, String((values as Record<string, unknown>)[k])])) as Record<K, string>;
  // Made now, not found missing when the report is written after the whole run.
  mkdirSync(String(values.out), { recursive: true });
  return { sizeGb, rounds, out: String(values.out), extra: own };
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
export const fixed = (x: number, d = 2) => x.toFixed(d);

/** Writes `<name>.json` and `<name>.md` into `out`, prints the Markdown; returns the base path. */
export async function writeReport(out: string, name: string, summary: unknown, md: string): Promise<string> {
  await mkdir(out, { recursive: true });
  const base = join(out, name);
  await writeFile(`${base}.json`, `${JSON.stringify(summary, null, 2)}\n`);
  await writeFile(`${base}.md`, `${md}\n`);
  console.log(md);
  return base;
}

/** CPU seconds (user + system) and peak RSS (VmHWM) of one process, read from /proc. */
export async function procUsage(pid: number): Promise<{ cpu: number; peakMb: number } | null> {
  try {
    const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    const ticks = Number(stat[11]) + Number(stat[12]);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return { cpu: ticks / 100, peakMb: Number(hwm?.[1] ?? 0) / 1024 };
  } catch {
    return null;
  }
}

/** Samples a process every 50 ms until it exits; the last sample is its final usage. */
export function watch(child: ChildProcess): Promise<{ code: number | null; cpu: number; peakMb: number }> {
  let last = { cpu: 0, peakMb: 0 };
  let done = false;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => ((done = true), r(code))));
  void (async () => {
    while (!done) {
      const u = await procUsage(child.pid!);
      // An exited process not yet reaped has no VmHWM line: keep the peak already seen.
      if (u && !done) last = { cpu: Math.max(last.cpu, u.cpu), peakMb: Math.max(last.peakMb, u.peakMb) };
      await delay(50);
    }
  })();
  return exited.then((code) => ({ code, ...last }));
}

export function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${err.slice(-400)}`))));
  });
}

export async function dropCaches(): Promise<boolean> {
  try {
    await run('sync', []);
    await writeFile('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

/** Loads about SIZE_GB of data: three tables with secondary indexes, grown by doubling. */
export async function loadDataset(primary: RigNode, sizeGb: number): Promise<number> {
  await primary.sql('CREATE DATABASE IF NOT EXISTS bench');
  await primary.sql(`CREATE TABLE IF NOT EXISTS bench.customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64), email VARCHAR(128),
    created DATETIME, KEY (email), KEY (created))`);
  await primary.sql(`CREATE TABLE IF NOT EXISTS bench.orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT, amount DECIMAL(10,2),
    status VARCHAR(16), note VARCHAR(200), created DATETIME, KEY (customer_id), KEY (status, created))`);
  await primary.sql(`CREATE TABLE IF NOT EXISTS bench.events (id INT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(32), payload VARCHAR(255),
    KEY (kind))`);
  await primary.sql("INSERT INTO bench.customers (name, email, created) VALUES ('seed', 'seed@example.org', NOW())");
  await primary.sql("INSERT INTO bench.orders (customer_id, amount, status, note, created) VALUES (1, 9.99, 'new', 'seed', NOW())");
  await primary.sql("INSERT INTO bench.events (kind, payload) VALUES ('seed', REPEAT('p', 200))");
  const target = sizeGb * 1e9;
  // The tablespace files, not information_schema: InnoDB's statistics lag behind the inserts.
  const size = async () => {
    let total = 0;
    for (const file of await readdir(join(primary.dataDir, 'bench'))) total += (await stat(join(primary.dataDir, 'bench', file))).size;
    return total;
  };
  const grow = [
    "INSERT INTO bench.customers (name, email, created) SELECT CONCAT('n', id + RAND()), CONCAT(MD5(RAND()), '@example.org'), NOW() - INTERVAL FLOOR(RAND() * 1000) DAY FROM bench.customers",
    "INSERT INTO bench.orders (customer_id, amount, status, note, created) SELECT FLOOR(RAND() * 100000), RAND() * 500, ELT(1 + FLOOR(RAND() * 3), 'new', 'paid', 'sent'), MD5(RAND()), NOW() FROM bench.orders",
    "INSERT INTO bench.events (kind, payload) SELECT ELT(1 + FLOOR(RAND() * 4), 'click', 'view', 'buy', 'leave'), REPEAT(MD5(RAND()), 6) FROM bench.events",
  ];
  for (let i = 0; (await size()) < target; i++) {
    // Grow the smallest share first so that no table dominates.
    await primary.sql(grow[i % grow.length]!);
  }
  await primary.sql('FLUSH TABLES');
  return size();
}

/**
 * Flushes InnoDB's dirty pages until the checkpoint has caught up with the log, then restores the
 * flushing setting. After a load the redo since the last checkpoint is large, and the backup tool
 * copies all of it: the first rounds' streams were 9 % longer (92.8 against 85.0 MB stored), and
 * round 1's first variant, always A, was measured on a longer stream than the others.
 */
export async function settleRedo(primary: RigNode): Promise<void> {
  const [{ pct }] = await primary.sql<{ pct: number }>('SELECT @@GLOBAL.innodb_max_dirty_pages_pct AS pct');
  await primary.sql('SET GLOBAL innodb_max_dirty_pages_pct = 0');
  try {
    const status = async (name: string) => Number((await primary.sql<{ Value: string }>('SHOW GLOBAL STATUS LIKE ?', [name]))[0]?.Value);
    const deadline = Date.now() + 120_000;
    while ((await status('Innodb_buffer_pool_pages_dirty')) > 0 || (await status('Innodb_checkpoint_age')) > 1024 * 1024) {
      if (Date.now() > deadline) throw new Error('InnoDB did not flush its dirty pages within 120 s');
      await delay(500);
    }
  } finally {
    await primary.sql('SET GLOBAL innodb_max_dirty_pages_pct = ?', [pct]);
  }
}

export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const v = await fn();
  return [v, (performance.now() - t) / 1000];
}

