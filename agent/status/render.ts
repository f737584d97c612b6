/**
 * The cluster's rows as a person reads them (a table, then one line per problem, then a verdict)
 * or as a script does (JSON). Pure: the time to count ages from and whether to colour are given.
 */
import type { ClusterStatus, PodRow } from './rows.js';

export interface TableOptions {
  /** ANSI colour: only on a terminal, and never with NO_COLOR. */
  readonly colour: boolean;
  /** Ages ("3m ago") are counted from it. */
  readonly now: Date;
}

type Tint = 'green' | 'red' | 'yellow';
const CODES: Readonly<Record<Tint, string>> = { green: '\x1b[32m', red: '\x1b[31m', yellow: '\x1b[33m' };
const RESET = '\x1b[0m';

interface Cell {
  readonly text: string;
  readonly tint?: Tint;
}

const HEADERS = ['POD', 'ROLE', 'READY', 'VERSION', 'SOURCE', 'IO', 'SQL', 'LAG', 'GTID', 'BEHIND', 'BACKUP', 'CLONE'] as const;
const GTID_WIDTH = 40;
const DASH: Cell = { text: '-' };

/** "10.11.19-MariaDB-0+deb12u1-log" → "10.11.19-MariaDB": the build suffix is in --json. */
function shortVersion(v: string | null): string {
  if (v === null) return '-';
  return /^(\d+\.\d+\.\d+(?:-MariaDB)?)/.exec(v)?.[1] ?? v;
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  do {
    v /= 1000;
    u++;
  } while (v >= 1000 && u < units.length - 1);
  return `${v.toFixed(1)} ${units[u]}`;
}

export function formatAge(iso: string | null, now: Date): string {
  const at = iso === null ? Number.NaN : Date.parse(iso);
  if (Number.isNaN(at)) return 'at an unknown time';
  const s = Math.max(0, Math.round((now.getTime() - at) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 2 * 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

const thread = (v: string | null): Cell => (v === null ? DASH : { text: v, tint: v === 'Yes' ? undefined : 'red' });

function behindCell(row: PodRow): Cell {
  const b = row.behind_primary;
  if (b === null) return DASH;
  if (b.transactions !== null) return { text: String(b.transactions), tint: b.transactions > 0 ? 'yellow' : undefined };
  if (b.reason?.includes('binlog position')) return { text: 'position' };
  if (b.reason?.includes('diverged')) return { text: 'diverged', tint: 'red' };
  return { text: '?' };
}

function backupCell(row: PodRow, now: Date): Cell {
  const b = row.backup;
  if (b === null) return DASH;
  const size = b.bytes === null ? '' : ` ${formatBytes(b.bytes)}`;
  if (b.finished_at === null) return { text: `serving${size}` };
  if (b.failure !== null) return { text: `failed ${formatAge(b.finished_at, now)}`, tint: 'yellow' };
  return { text: `ok${size}, ${formatAge(b.finished_at, now)}` };
}

function cloneCell(row: PodRow, now: Date): Cell {
  const c = row.clone;
  if (c === null) return DASH;
  return { text: `${c.source_host ?? '?'} (${c.choice ?? '?'}), ${formatAge(c.finished_at, now)}` };
}

function gtidCell(gtid: string | null): Cell {
  if (gtid === null) return DASH;
  if (gtid === '') return { text: '(empty)' };
  return { text: gtid.length > GTID_WIDTH ? `${gtid.slice(0, GTID_WIDTH - 1)}…` : gtid };
}

function cells(row: PodRow, now: Date): Cell[] {
  const pod: Cell = { text: row.pod, tint: row.healthy ? undefined : 'red' };
  if (!row.answered) return [pod, ...HEADERS.slice(1).map(() => DASH)];
  return [
    pod,
    { text: row.role ?? '-' },
    row.ready ? { text: 'yes', tint: 'green' } : { text: 'no', tint: 'red' },
    { text: shortVersion(row.server_version) },
    { text: row.source_host ?? '-' },
    thread(row.io_running),
    thread(row.sql_running),
    row.seconds_behind === null ? DASH : { text: `${row.seconds_behind} s` },
    gtidCell(row.gtid_executed),
    behindCell(row),
    backupCell(row, now),
    cloneCell(row, now),
  ];
}

/** The table, the problems (one line each) and the verdict, each line ending in a newline. */
export function renderTable(status: ClusterStatus, options: TableOptions): string {
  const paint = (c: Cell) => (options.colour && c.tint ? `${CODES[c.tint]}${c.text}${RESET}` : c.text);
  const rows: Cell[][] = [HEADERS.map((h) => ({ text: h })), ...status.pods.map((p) => cells(p, options.now))];
  const widths = HEADERS.map((_, i) => Math.max(...rows.map((r) => [...r[i]!.text].length)));
  const lines = rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? paint(c) : paint(c) + ' '.repeat(widths[i]! - [...c.text].length + 2)))
      .join('')
      .trimEnd(),
  );
  const unhealthy = status.pods.filter((p) => !p.healthy);
  if (unhealthy.length > 0) lines.push('');
  for (const p of unhealthy) for (const problem of p.problems) lines.push(paint({ text: `${p.pod}: ${problem}`, tint: 'red' }));
  lines.push('');
  const n = status.pods.length;
  lines.push(
    unhealthy.length === 0
      ? paint({ text: `${n} pod${n === 1 ? '' : 's'}, all healthy`, tint: 'green' })
      : paint({ text: `${n} pod${n === 1 ? '' : 's'}, ${unhealthy.length} not healthy: ${unhealthy.map((p) => p.pod).join(', ')}`, tint: 'red' }),
  );
  return `${lines.join('\n')}\n`;
}

/** `--json`: the whole status, indented; with `--watch`, one document per line. */
export function renderJson(status: ClusterStatus, oneLine: boolean): string {
  return `${oneLine ? JSON.stringify(status) : JSON.stringify(status, null, 2)}\n`;
}
