/**
 * The replica-setup syntax of each server version, transcribed from the vendors' reference
 * manuals (the pages are listed in test/fixtures/clones/README.md), not from the agent's code: the
 * golden plans are the only evidence for MySQL (no MySQL server runs here), so each of their
 * statements is checked against this as well as against what the code printed.
 */

interface Grammar {
  /** Statements the plan may run other than CHANGE …, each in full. */
  readonly statements: readonly RegExp[];
  /** The CHANGE statement's head and the options the manual lists for it. */
  readonly change: { readonly head: string; readonly options: readonly string[] };
  /** Options every CHANGE statement must carry on this version. */
  readonly required: readonly string[];
}

const QUOTED = String.raw`'[^']*'`;
const statement = (text: string): RegExp => new RegExp(`^${text.replaceAll(' ', '\\s+').replaceAll('QUOTED', QUOTED)}$`);

const MASTER = ['MASTER_HOST', 'MASTER_PORT', 'MASTER_USER', 'MASTER_PASSWORD', 'MASTER_CONNECT_RETRY', 'MASTER_LOG_FILE', 'MASTER_LOG_POS'];
const SOURCE = ['SOURCE_HOST', 'SOURCE_PORT', 'SOURCE_USER', 'SOURCE_PASSWORD', 'SOURCE_CONNECT_RETRY', 'SOURCE_LOG_FILE', 'SOURCE_LOG_POS', 'SOURCE_AUTO_POSITION', 'GET_SOURCE_PUBLIC_KEY'];
const SLAVE_STATEMENTS = [statement('STOP SLAVE'), statement('RESET SLAVE ALL'), statement('START SLAVE')];
const REPLICA_STATEMENTS = [statement('STOP REPLICA'), statement('RESET REPLICA ALL'), statement('START REPLICA')];
const GTID_PURGED = statement('SET GLOBAL gtid_purged = QUOTED');

/** By the prefix of the server's name in test/dialects.ts SERVERS. */
const GRAMMARS: Readonly<Record<string, Grammar>> = {
  // 5.7: CHANGE MASTER TO only; GET_MASTER_PUBLIC_KEY exists (5.7.23+) but caching_sha2_password does not.
  'MySQL 5.7': {
    statements: [...SLAVE_STATEMENTS, statement('RESET MASTER'), GTID_PURGED],
    change: { head: 'CHANGE MASTER TO', options: [...MASTER, 'MASTER_AUTO_POSITION', 'GET_MASTER_PUBLIC_KEY'] },
    required: [],
  },
  // 8.0 before 8.0.22/8.0.23: the old names only; caching_sha2_password is the default (8.0.4+), so
  // a replica without TLS needs the RSA key exchange (GET_MASTER_PUBLIC_KEY=1).
  'MySQL 8.0.21': {
    statements: [...SLAVE_STATEMENTS, statement('RESET MASTER'), GTID_PURGED],
    change: { head: 'CHANGE MASTER TO', options: [...MASTER, 'MASTER_AUTO_POSITION', 'GET_MASTER_PUBLIC_KEY'] },
    required: ['GET_MASTER_PUBLIC_KEY'],
  },
  // 8.0.30: START/STOP/RESET REPLICA (8.0.22), CHANGE REPLICATION SOURCE TO (8.0.23); RESET MASTER is still the 8.0 name.
  'MySQL 8.0.30': {
    statements: [...REPLICA_STATEMENTS, statement('RESET MASTER'), GTID_PURGED],
    change: { head: 'CHANGE REPLICATION SOURCE TO', options: SOURCE },
    required: ['GET_SOURCE_PUBLIC_KEY'],
  },
  // 8.4 removed the old names; RESET BINARY LOGS AND GTIDS replaced RESET MASTER (8.2).
  'MySQL 8.4': {
    statements: [...REPLICA_STATEMENTS, statement('RESET BINARY LOGS AND GTIDS'), GTID_PURGED],
    change: { head: 'CHANGE REPLICATION SOURCE TO', options: SOURCE },
    required: ['GET_SOURCE_PUBLIC_KEY'],
  },
  // MariaDB: CHANGE MASTER TO with MASTER_USE_GTID; the GTID position is gtid_slave_pos.
  MariaDB: {
    statements: [...SLAVE_STATEMENTS, statement('SET GLOBAL gtid_slave_pos = QUOTED')],
    change: { head: 'CHANGE MASTER TO', options: [...MASTER, 'MASTER_USE_GTID'] },
    required: [],
  },
};

function grammarOf(server: string): Grammar {
  const found = Object.entries(GRAMMARS).find(([prefix]) => server.startsWith(prefix));
  if (!found) throw new Error(`no manual grammar for ${server}`);
  return found[1];
}

/** Option names of `CHANGE … TO a=1, b='x'` (values quoted by the driver hold no bare commas here). */
function optionNames(options: string): string[] {
  return options.split(/,\s*(?=[A-Z_]+\s*=)/).map((o) => o.split('=')[0]!.trim());
}

/**
 * What is wrong with `statements` (without their `;`) on `server` by its manual: statements or
 * options it does not have, a required option missing, positions mixed with auto-positioning, or
 * gtid_purged set before the binary log state was reset. Empty when nothing is.
 */
export function manualViolations(server: string, statements: readonly string[]): string[] {
  const grammar = grammarOf(server);
  const problems: string[] = [];
  let reset = false;
  for (const sql of statements) {
    if (sql.startsWith(grammar.change.head + ' ')) {
      const names = optionNames(sql.slice(grammar.change.head.length + 1));
      for (const name of names) if (!grammar.change.options.includes(name)) problems.push(`${server}: ${grammar.change.head} has no option ${name}`);
      for (const name of grammar.required) if (!names.includes(name)) problems.push(`${server}: ${sql} lacks ${name}=1`);
      const positioned = names.some((n) => n.endsWith('_LOG_FILE') || n.endsWith('_LOG_POS'));
      if (positioned && names.some((n) => n.endsWith('_AUTO_POSITION') || n === 'MASTER_USE_GTID')) problems.push(`${server}: ${sql} mixes a position with GTID positioning`);
    } else if (!grammar.statements.some((re) => re.test(sql))) {
      problems.push(`${server}: no such statement: ${sql}`);
    }
    if (/^RESET (MASTER|BINARY LOGS AND GTIDS)$/.test(sql)) reset = true;
    if (GTID_PURGED.test(sql) && !reset) problems.push(`${server}: gtid_purged is set before gtid_executed was emptied`);
  }
  return problems;
}
