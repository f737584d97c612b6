/**
 * Every clone fixture against every server version the users run: the statements the sidecar
 * would run (REPLICATION_MODE=auto), or its refusal, compared with the reviewed golden file
 * `expected.md` of the fixture. A version never gets a statement it lacks (checked below too).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentError } from '../../../agent/core/errors.js';
import { NO_REPLICATION_TLS, planReplication, planStatements } from '../../../agent/mysql/replication-sql.js';
import { readCloneCoordinates } from '../../../agent/mysql/clone-info.js';
import { SERVERS, lacks } from '../../dialects.js';

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
    await expect(await render(dir)).toMatchFileSnapshot(join(CLONES, dir, 'expected.md'));
  });
});
