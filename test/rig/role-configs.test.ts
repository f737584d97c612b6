/**
 * The shipped role configs fit their flavor: the real mariadbd accepts every MariaDB file and
 * refuses super-read-only (which the MySQL replica file must have and the MariaDB one must not).
 */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from './rig.js';
import { newBaseDir } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await newBaseDir('role-configs');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Exit status of `mariadbd --help --verbose` with this config: it fails on any unknown option. */
function mariadbdAccepts(cnf: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  return new Promise((resolve) =>
    execFile('mariadbd', [`--defaults-file=${cnf}`, ...asRoot, '--help', '--verbose'], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

describe('role configs', () => {
  it.each(['primary.cnf', 'replica.cnf'])('mariadbd accepts manifests/mariadb/%s', async (file) => {
    const result = await mariadbdAccepts(join(REPO, 'manifests/mariadb', file));
    expect(result.stderr).not.toContain('[ERROR]');
    expect(result.code).toBe(0);
  });

  it('MariaDB refuses super-read-only, so only the MySQL replica config has it', async () => {
    const cnf = join(dir, 'sro.cnf');
    await writeFile(cnf, '[mysqld]\nsuper-read-only=ON\n');
    const result = await mariadbdAccepts(cnf);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("unknown variable 'super-read-only");
    expect(await readFile(join(REPO, 'manifests/mysql/replica.cnf'), 'utf8')).toMatch(/^super-read-only=ON$/m);
    expect(await readFile(join(REPO, 'manifests/mariadb/replica.cnf'), 'utf8')).not.toMatch(/^super-read-only/m);
    expect(await readFile(join(REPO, 'manifests/mariadb/replica.cnf'), 'utf8')).toMatch(/^read-only=1$/m);
  });

  it('both flavors log binary logs with GTIDs on the primary', async () => {
    expect(await readFile(join(REPO, 'manifests/mysql/primary.cnf'), 'utf8')).toMatch(/^gtid-mode=ON$/m);
    expect(await readFile(join(REPO, 'manifests/mariadb/primary.cnf'), 'utf8')).toMatch(/^log-bin=/m);
  });

  // No channel may start before the sidecar has decided (a clone carries its donor's channel):
  // the sidecar starts replication itself. Ordinal 0 never replicates, a rebuilt one included.
  it.each(['primary.cnf', 'replica.cnf'])('mariadbd takes skip-slave-start from manifests/mariadb/%s', async (file) => {
    const result = await mariadbdAccepts(join(REPO, 'manifests/mariadb', file));
    expect(result.stdout).toMatch(/^skip-slave-start\s+TRUE$/m);
  });

  it('MariaDB 10.11 refuses the MySQL name skip-replica-start; the MySQL files use it (8.0.26+; skip-slave-start is its deprecated name)', async () => {
    const cnf = join(dir, 'srs.cnf');
    await writeFile(cnf, '[mysqld]\nskip-replica-start\n');
    const result = await mariadbdAccepts(cnf);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("unknown option '--skip-replica-start'");
    for (const file of ['primary.cnf', 'replica.cnf']) {
      const text = await readFile(join(REPO, 'manifests/mysql', file), 'utf8');
      expect(text).toMatch(/^skip-replica-start$/m);
      expect(text).not.toMatch(/^skip-slave-start/m);
    }
  });
});
