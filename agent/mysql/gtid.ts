/**
 * Comparing the GTID state of two servers: which one has executed more. Pure functions.
 *
 * MariaDB positions are `domain-server-seq[,…]`, one per replication domain; within a domain
 * sequence numbers only grow, so A is at least as advanced as B when, in every domain of B, A
 * has a sequence number at least as high (the server id is not part of the order).
 * MySQL sets are `uuid[:tag]:interval[:interval…][,…]`; A covers B when B is a subset of A.
 * The empty string is the state of a server that has executed nothing: everything covers it.
 */

export type GtidOrder = 'equal' | 'ahead' | 'behind' | 'diverged';

const MARIADB_ITEM = /^([0-9]{1,10})-([0-9]{1,10})-([0-9]{1,20})$/;
const MYSQL_ITEM = /^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})((?::[^,]+)+)$/;

type Interval = readonly [bigint, bigint];

interface ParsedGtid {
  readonly flavor: 'mariadb' | 'mysql' | 'empty';
  /** MariaDB: domain → highest seq; MySQL: `uuid[:tag]` → sorted, merged intervals. */
  readonly domains: ReadonlyMap<string, bigint | readonly Interval[]>;
}

/** Parses a GTID position or set; throws on anything else (callers compare only values read from servers). */
function parse(text: string): ParsedGtid {
  const compact = text.replace(/\s+/g, '');
  if (compact === '') return { flavor: 'empty', domains: new Map() };
  const items = compact.split(',');
  if (items.every((i) => MARIADB_ITEM.test(i))) {
    const domains = new Map<string, bigint>();
    for (const item of items) {
      const [, domain, , seq] = MARIADB_ITEM.exec(item)!;
      const prev = domains.get(domain!);
      if (prev === undefined || BigInt(seq!) > prev) domains.set(domain!, BigInt(seq!));
    }
    return { flavor: 'mariadb', domains };
  }
  const domains = new Map<string, Interval[]>();
  for (const item of items) {
    const m = MYSQL_ITEM.exec(item);
    if (!m) throw new Error(`"${text}" is not a GTID position or set`);
    let key = m[1]!.toLowerCase();
    for (const part of m[2]!.slice(1).split(':')) {
      const range = /^([0-9]+)(?:-([0-9]+))?$/.exec(part);
      if (!range) {
        // MySQL 8.4 tags: `uuid:tag:1-5`; a tag starts a new key for the intervals after it.
        if (!/^[a-z_][a-z0-9_]{0,31}$/.test(part)) throw new Error(`"${text}" is not a GTID position or set`);
        key = `${m[1]!.toLowerCase()}:${part}`;
        continue;
      }
      const lo = BigInt(range[1]!);
      const hi = BigInt(range[2] ?? range[1]!);
      const list = domains.get(key) ?? [];
      list.push([lo, hi]);
      domains.set(key, list);
    }
  }
  for (const [key, list] of domains) domains.set(key, merge(list));
  return { flavor: 'mysql', domains };
}

function merge(intervals: Interval[]): Interval[] {
  const sorted = [...intervals].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [lo, hi] of sorted) {
    const last = out.at(-1);
    if (last && lo <= last[1] + 1n) last[1] = hi > last[1] ? hi : last[1];
    else out.push([lo, hi]);
  }
  return out;
}

function intervalsCover(a: readonly Interval[], b: readonly Interval[]): boolean {
  return b.every(([lo, hi]) => a.some(([alo, ahi]) => alo <= lo && hi <= ahi));
}

/** Whether `a` has executed everything `b` has. */
export function gtidCovers(a: string, b: string): boolean {
  const pa = parse(a);
  const pb = parse(b);
  if (pb.flavor === 'empty') return true;
  if (pa.flavor === 'empty') return false;
  if (pa.flavor !== pb.flavor) return false;
  for (const [key, vb] of pb.domains) {
    const va = pa.domains.get(key);
    if (va === undefined) return false;
    if (typeof vb === 'bigint') {
      if ((va as bigint) < vb) return false;
    } else if (!intervalsCover(va as readonly Interval[], vb)) {
      return false;
    }
  }
  return true;
}

/** How `a` stands against `b`. */
export function compareGtid(a: string, b: string): GtidOrder {
  const ab = gtidCovers(a, b);
  const ba = gtidCovers(b, a);
  if (ab && ba) return 'equal';
  if (ab) return 'ahead';
  if (ba) return 'behind';
  return 'diverged';
}

/** Transactions in a parsed state: MariaDB the highest sequence number per domain, MySQL the GTIDs in the intervals. */
function transactions(state: ParsedGtid): bigint {
  let n = 0n;
  for (const v of state.domains.values()) {
    n += typeof v === 'bigint' ? v : v.reduce((sum, [lo, hi]) => sum + hi - lo + 1n, 0n);
  }
  return n;
}

/**
 * How many transactions `behind` lacks of `ahead`, or null when the states do not allow it
 * (`behind` has something `ahead` has not, or either is not a GTID state). MariaDB counts
 * sequence numbers, which a domain's primary hands out one by one.
 */
export function gtidDistance(ahead: string, behind: string): number | null {
  let pa: ParsedGtid;
  let pb: ParsedGtid;
  try {
    pa = parse(ahead);
    pb = parse(behind);
  } catch {
    return null;
  }
  if (!gtidCovers(ahead, behind)) return null;
  // Covered: every domain or interval of `behind` lies within `ahead`'s, so the counts subtract.
  return Number(transactions(pa) - transactions(pb));
}

/** Whether the text parses as a GTID position or set (the empty one included). */
export function isGtidState(text: string): boolean {
  try {
    parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * The items that have executed everything every other item has (all equal to each other),
 * or null when no single item does (positions diverged).
 */
export function mostAdvanced<T>(items: readonly T[], gtidOf: (item: T) => string): { best: T[]; behind: T[] } | null {
  const best = items.filter((a) => items.every((b) => gtidCovers(gtidOf(a), gtidOf(b))));
  if (best.length === 0) return null;
  return { best, behind: items.filter((i) => !best.includes(i)) };
}
