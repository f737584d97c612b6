/**
 * Every clone fixture against every server version the users run: the statements the sidecar
 * would run (REPLICATION_MODE=auto), or its refusal, compared with the reviewed golden file
 * `expected.md` of the fixture (never written by a run: a missing one fails). A version never gets
 * a statement it lacks (checked below too), and every statement of every golden file is checked
 * against the version's syntax as its reference manual gives it (test/mysql-manual.ts).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentError } from '../../../agent/core/errors.js';
import { NO_REPLICATION_TLS, planReplication, planStatements } from '../../../agent/mysql/replication-sql.js';
import { readCloneCoordinates } from '../../../agent/mysql/clone-info.js';
import { SERVERS, lacks } from '../../dialects.js';
import { expectGolden, readGolden } from '../../golden.js';
import { manualViolations } from '../../mysql-manual.js';

const CLONES = join(import.meta.dirname, '../../fixtures/clones');
const SOURCE = { host: 'mysql-0.mysql', port: 3306, user: 'repl', password: 'secret-pw', connectRetrySeconds: 10, tls: NO_REPLICATION_TLS };

const CLEARING = { replica: ['STOP REPLICA', 'RESET REPLICA ALL'], slave: ['STOP SLAVE', 'RESET SLAVE ALL'] };

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
      const statements = planStatements(plan);
      lines.push(`mode ${plan.mode}: ${plan.why}`, '', '```sql', ...statements.map((s) => `${s.shown};`), '```', '');
      for (const s of statements) expect(s.sql, `${dir} on ${name}`).not.toMatch(lacks(name));
      // A clone of a replica carries the donor's channel (MySQL: in mysql.ibd): forgotten first.
      expect(statements.slice(0, 2).map((s) => s.sql), `${dir} on ${name}`).toEqual(CLEARING[name.startsWith('MySQL 8.0.30') || name.startsWith('MySQL 8.4') ? 'replica' : 'slave']);
      for (const s of statements) expect(s.shown).not.toContain('secret-pw');
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
    expect(dirs.length).toBeGreaterThanOrEqual(19);
  });

  it.each(dirs)('%s matches its expected.md', async (dir) => {
    await expectGolden(await render(dir), join(CLONES, dir, 'expected.md'));
  });

  it.each(dirs)("%s: every golden statement is in the version's manual", async (dir) => {
    const sections = (await readGolden(join(CLONES, dir, 'expected.md'))).split(/^## /m).slice(1);
    for (const section of sections) {
      const server = section.slice(0, section.indexOf('\n'));
      const sql = /```sql\n([^`]*)```/.exec(section)?.[1];
      if (sql === undefined) continue; // a refusal
      const statements = sql.trim().split('\n').map((line) => line.replace(/;$/, ''));
      expect(manualViolations(server, statements), `${dir}, ${server}`).toEqual([]);
    }
    if (!sections.length) expect(await readGolden(join(CLONES, dir, 'expected.md'))).toContain('refused for every server');
  });

  it('the manual check catches a statement a version lacks, a missing key exchange and a misordered reset', () => {
    expect(manualViolations('MySQL 8.4.3, gtid_mode ON', ['RESET MASTER'])).toHaveLength(1);
    expect(manualViolations('MySQL 8.0.21, gtid_mode ON', ["CHANGE MASTER TO MASTER_HOST='h', MASTER_AUTO_POSITION=1"])).toEqual([
      "MySQL 8.0.21, gtid_mode ON: CHANGE MASTER TO MASTER_HOST='h', MASTER_AUTO_POSITION=1 lacks GET_MASTER_PUBLIC_KEY=1",
    ]);
    expect(manualViolations('MySQL 5.7.44, gtid_mode ON', ["SET GLOBAL gtid_purged = 'x'", 'RESET MASTER'])).toHaveLength(1);
    expect(manualViolations('MariaDB 10.11.9', ["CHANGE MASTER TO MASTER_LOG_FILE='f', MASTER_LOG_POS=4, MASTER_USE_GTID=slave_pos"])).toHaveLength(1);
  });
});
