/**
 * Parsers for the replication coordinates a hot backup leaves in the clone:
 * `xtrabackup_binlog_info` (the source's own binlog position) and `xtrabackup_slave_info`
 * (where the source was replicating from). Pure functions over the file text; every value
 * is validated by pattern so nothing found in a file can reach SQL unchecked.
 */
import { ParseError } from '../core/errors.js';

declare const binlogFileBrand: unique symbol;
/** A binlog file name such as `mysql-bin.000001`. */
export type BinlogFile = string & { readonly [binlogFileBrand]: true };

declare const gtidSetBrand: unique symbol;
/** A GTID set: MariaDB `domain-server-seq[,…]` or MySQL `uuid[:tag]:interval[,…]`. */
export type GtidSet = string & { readonly [gtidSetBrand]: true };

export interface BinlogPosition {
  readonly file: BinlogFile;
  /** Byte offset; a bigint would be exact beyond 2^53 but no binlog gets near that. */
  readonly pos: number;
}

/** Which info file the coordinates come from: the source's own binlog, or its replication position. */
export type InfoFileKind = 'binlog_info' | 'slave_info';

/**
 * Where a clone says replication has to start: a binlog position, a GTID set, or both
 * (MariaDB's binlog_info carries both; a GTID replica's slave_info only the GTID set).
 */
export interface CloneCoordinates {
  readonly from: InfoFileKind;
  readonly position: BinlogPosition | null;
  readonly gtid: GtidSet | null;
}

const BINLOG_FILE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/;
const POSITION = /^[0-9]{1,19}$/;
const MARIADB_GTID = /^[0-9]{1,10}-[0-9]{1,10}-[0-9]{1,20}(,[0-9]{1,10}-[0-9]{1,10}-[0-9]{1,20})*$/;
const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const INTERVALS = '(:[0-9]+(-[0-9]+)?)+';
const MYSQL_GTID_ITEM = `${UUID}(:[a-z_][a-z0-9_]{0,31}${INTERVALS}|${INTERVALS})+`;
const MYSQL_GTID = new RegExp(`^${MYSQL_GTID_ITEM}(,${MYSQL_GTID_ITEM})*$`);

export function parseBinlogFile(text: string, source: string): BinlogFile {
  if (!BINLOG_FILE.test(text)) throw new ParseError(`${source}: "${text}" is not a binlog file name`, source);
  return text as BinlogFile;
}

export function parsePosition(text: string, source: string): number {
  const n = Number(text);
  if (!POSITION.test(text) || !Number.isSafeInteger(n) || n < 4) {
    throw new ParseError(`${source}: "${text}" is not a binlog position`, source);
  }
  return n;
}

/** MariaDB GTIDs are `domain-server-seq`; MySQL's start with the source's UUID. */
export function gtidFlavor(gtid: GtidSet): 'mariadb' | 'mysql' {
  return MARIADB_GTID.test(gtid) ? 'mariadb' : 'mysql';
}

/** Accepts a MariaDB or MySQL GTID set; whitespace (MySQL splits long sets over lines) is dropped. */
export function parseGtidSet(text: string, source: string): GtidSet {
  const compact = text.replace(/\s+/g, '');
  if (!MARIADB_GTID.test(compact) && !MYSQL_GTID.test(compact)) {
    throw new ParseError(`${source}: "${text}" is not a GTID set`, source);
  }
  return compact as GtidSet;
}

/**
 * `file<TAB>pos[<TAB>gtid]`, one record per binlog in the binlog-copying variant (the last one
 * counts), with MySQL GTID sets that may continue on lines after a trailing comma.
 */
export function parseBinlogInfo(text: string, source = 'xtrabackup_binlog_info'): CloneCoordinates {
  const records: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const last = records.length - 1;
    if (last >= 0 && /,\s*$/.test(records[last]!)) records[last] += line.trim();
    else records.push(line);
  }
  const record = records.at(-1);
  if (record === undefined) throw new ParseError(`${source} is empty`, source);
  const fields = record.trim().split(/\t| +/);
  if (fields.length < 2 || fields.length > 3) {
    throw new ParseError(`${source}: expected "file<TAB>position[<TAB>gtid]", found ${fields.length} fields`, source);
  }
  const [file, pos, gtid] = fields as [string, string, string | undefined];
  return {
    from: 'binlog_info',
    position: { file: parseBinlogFile(file, source), pos: parsePosition(pos, source) },
    gtid: gtid ? parseGtidSet(gtid, source) : null,
  };
}

interface ChangeStatement {
  readonly channel: string;
  readonly options: ReadonlyMap<string, string>;
}

type SlaveInfoStatement =
  | { readonly kind: 'set'; readonly variable: 'gtid_slave_pos' | 'gtid_purged'; readonly value: string }
  | ({ readonly kind: 'change' } & ChangeStatement);

const SET_GTID = /^SET\s+(?:GLOBAL\s+|@@GLOBAL\.)(gtid_slave_pos|gtid_purged)\s*=\s*'([^']*)'$/i;
const CHANGE = /^CHANGE\s+(?:MASTER|REPLICATION\s+SOURCE)\s+(?:'([A-Za-z0-9_-]{0,64})'\s+)?TO\s+(.+?)(?:\s+FOR\s+CHANNEL\s+'([A-Za-z0-9_-]{0,64})')?$/is;
const OPTION = /^\s*([A-Za-z_]+)\s*=\s*('[^']*'|[A-Za-z0-9_]+)\s*$/;

function parseStatement(text: string, source: string): SlaveInfoStatement {
  const set = SET_GTID.exec(text);
  if (set) return { kind: 'set', variable: set[1]!.toLowerCase() as 'gtid_slave_pos' | 'gtid_purged', value: set[2]! };
  const change = CHANGE.exec(text);
  if (!change) throw new ParseError(`${source}: unexpected statement "${text}"`, source);
  const options = new Map<string, string>();
  for (const part of change[2]!.split(',')) {
    const m = OPTION.exec(part);
    if (!m) throw new ParseError(`${source}: unexpected option "${part.trim()}" in "${text}"`, source);
    // One spelling for both: SOURCE_LOG_FILE is MASTER_LOG_FILE (MySQL 8.0.23+).
    const key = m[1]!.toUpperCase().replace(/^SOURCE_/, 'MASTER_');
    options.set(key, m[2]!.replace(/^'(.*)'$/s, '$1'));
  }
  return { kind: 'change', channel: change[1] ?? change[3] ?? '', options };
}

/**
 * Splits on `;` and on line ends outside quotes, so both the `;`-terminated and the early
 * no-`;` forms parse, and a GTID set quoted over several lines stays one value.
 */
function splitStatements(text: string): string[] {
  const statements: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === "'") quoted = !quoted;
    if (!quoted && (ch === ';' || ch === '\n')) {
      statements.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  statements.push(current);
  return statements.map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * Parses `xtrabackup_slave_info` in all its spellings: position form, GTID form (MariaDB
 * `gtid_slave_pos` + `master_use_gtid`, MySQL `gtid_purged` + auto-position), with or
 * without `;`, `CHANGE MASTER` or `CHANGE REPLICATION SOURCE`. Only the default channel
 * can be followed: a multi-source clone is refused.
 */
export function parseSlaveInfo(text: string, source = 'xtrabackup_slave_info'): CloneCoordinates {
  const statements = splitStatements(text).map((s) => parseStatement(s, source));
  if (statements.length === 0) throw new ParseError(`${source} is empty`, source);
  const changes = statements.filter((s) => s.kind === 'change');
  const named = changes.filter((c) => c.channel !== '').map((c) => c.channel);
  if (named.length > 0) {
    throw new ParseError(
      `${source}: the clone comes from a multi-source replica (channels ${named.map((c) => `'${c}'`).join(', ')}); only the default channel can be followed: clone from the primary or a single-source replica`,
      source,
    );
  }
  if (changes.length !== 1) throw new ParseError(`${source}: expected one CHANGE MASTER statement, found ${changes.length}`, source);
  const { options } = changes[0]!;
  const sets = statements.filter((s) => s.kind === 'set');
  if (sets.length > 1) throw new ParseError(`${source}: expected at most one SET GLOBAL statement, found ${sets.length}`, source);
  const set = sets[0];

  const useGtid = options.get('MASTER_USE_GTID')?.toLowerCase();
  const autoPosition = options.get('MASTER_AUTO_POSITION');
  if (useGtid !== undefined || autoPosition !== undefined) {
    const known = useGtid !== undefined ? ['MASTER_USE_GTID'] : ['MASTER_AUTO_POSITION'];
    rejectOtherOptions(options, known, source);
    if (useGtid !== undefined && useGtid !== 'slave_pos' && useGtid !== 'current_pos') {
      throw new ParseError(`${source}: master_use_gtid=${useGtid} is not supported`, source);
    }
    if (autoPosition !== undefined && autoPosition !== '1') {
      throw new ParseError(`${source}: MASTER_AUTO_POSITION=${autoPosition} is not supported`, source);
    }
    const expected = useGtid !== undefined ? 'gtid_slave_pos' : 'gtid_purged';
    if (!set || set.variable !== expected) {
      throw new ParseError(`${source}: a GTID CHANGE MASTER needs a SET GLOBAL ${expected} statement`, source);
    }
    const gtid = parseGtidSet(set.value, source);
    if (gtidFlavor(gtid) !== (expected === 'gtid_slave_pos' ? 'mariadb' : 'mysql')) {
      throw new ParseError(`${source}: "${set.value}" is not a ${expected} value`, source);
    }
    return { from: 'slave_info', position: null, gtid };
  }
  if (set) throw new ParseError(`${source}: SET GLOBAL ${set.variable} without a GTID CHANGE MASTER`, source);
  rejectOtherOptions(options, ['MASTER_LOG_FILE', 'MASTER_LOG_POS'], source);
  const file = options.get('MASTER_LOG_FILE');
  const pos = options.get('MASTER_LOG_POS');
  if (file === undefined || pos === undefined) {
    throw new ParseError(`${source}: CHANGE MASTER needs MASTER_LOG_FILE and MASTER_LOG_POS`, source);
  }
  return {
    from: 'slave_info',
    position: { file: parseBinlogFile(file, source), pos: parsePosition(pos, source) },
    gtid: null,
  };
}

function rejectOtherOptions(options: ReadonlyMap<string, string>, allowed: string[], source: string): void {
  for (const key of options.keys()) {
    if (!allowed.includes(key)) throw new ParseError(`${source}: unexpected option ${key}`, source);
  }
}
