/**
 * Every clone fixture against every server version the users run: the statements the sidecar
 * would run (REPLICATION_MODE=auto), or its refusal, compared with the reviewed golden file
 * `expected.md` of the fixture. A version never gets a statement it lacks (checked below too).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentError } from '../../../agent/core/errors.js';
import { type ServerFacts, planReplication } from '../../../agent/mysql/replication-sql.js';
import { readCloneCoordinates } from '../../../agent/mysql/clone-info.js';
import { parseServerVersion } from '../../../agent/mysql/server-version.js';

const CLONES = join(import.meta.dirname, '../../fixtures/clones');
const SOURCE = { host: 'mysql-0.mysql', port: 3306, user: 'repl', password: 'secret-pw', connectRetrySeconds: 10 };

const SERVERS: [string, ServerFacts][] = [
  ['MySQL 5.7.44, gtid_mode ON', { version: parseServerVersion('5.7.44-log'), gtidMode: true }],
  ['MySQL 8.0.21, gtid_mode ON', { version: parseServerVersion('8.0.21'), gtidMode: true }],
  ['MySQL 8.0.30, gtid_mode ON', { version: parseServerVersion('8.0.30'), gtidMode: true }],
  ['MySQL 8.4.3, gtid_mode ON', { version: parseServerVersion('8.4.3'), gtidMode: true }],
  ['MySQL 8.4.3, gtid_mode OFF', { version: parseServerVersion('8.4.3'), gtidMode: false }],
  ['MariaDB 10.11.9', { version: parseServerVersion('10.11.9-MariaDB'), gtidMode: true }],
  ['MariaDB 11.4.3', { version: parseServerVersion('11.4.3-MariaDB'), gtidMode: true }],
];

/** Statements each version does not have: they must never be planned for it. */
const LACKS: Record<string, RegExp> = {
  'MySQL 5.7.44': /CHANGE REPLICATION SOURCE|START REPLICA|SOURCE_|RESET BINARY LOGS|PUBLIC_KEY|gtid_slave_pos|MASTER_USE_GTID/,
  'MySQL 8.0.21': /CHANGE REPLICATION SOURCE|START REPLICA|SOURCE_|RESET BINARY LOGS|gtid_slave_pos|MASTER_USE_GTID/,
  'MySQL 8.0.30': /CHANGE MASTER|START SLAVE|MASTER_|RESET BINARY LOGS|gtid_slave_pos/,
  'MySQL 8.4.3': /CHANGE MASTER|START SLAVE|MASTER_|RESET MASTER|gtid_slave_pos/,
  MariaDB: /SOURCE|REPLICA|PUBLIC_KEY|AUTO_POSITION|gtid_purged|RESET/,
};

async function render(dir: string): Promise<string> {
  const lines = [`# ${dir}`, ''];
  let clone;
  try {
    clone = await readCloneCoordinates(join(CLONES, dir));
  } catch (err) {
    return [...lines, `refused for every server: ${(err as Error).message}`, ''].join('\n');
  }
  if (!clone) throw new Error(`${dir} holds no info file`);
  lines.push(`from \`${clone.file}\``, '');
  for (const [name, server] of SERVERS) {
    lines.push(`## ${name}`, '');
    try {
      const plan = planReplication(server, clone.coordinates, 'auto', SOURCE);
      lines.push(`mode ${plan.mode}: ${plan.why}`, '', '```sql', ...plan.statements.map((s) => `${s.shown};`), '```', '');
      const lacks = Object.entries(LACKS).find(([prefix]) => name.startsWith(prefix))![1];
      for (const s of plan.statements) expect(s.sql, `${dir} on ${name}`).not.toMatch(lacks);
      for (const s of plan.statements) expect(s.shown).not.toContain('secret-pw');
    } catch (err) {
      if (!(err instanceof AgentError)) throw err;
      lines.push(`refused: ${err.message}`, '');
    }
  }
  return lines.join('\n');
}

describe('plans for every clone fixture and server version', () => {
  const dirs = readdirSync(CLONES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);

  it('covers every fixture folder', () => {
    expect(dirs.length).toBeGreaterThanOrEqual(18);
  });

  it.each(dirs)('%s matches its expected.md', async (dir) => {
    await expect(await render(dir)).toMatchFileSnapshot(join(CLONES, dir, 'expected.md'));
  });
});
