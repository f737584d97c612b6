import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCommand } from '../../../agent/core/settings.js';
import { type InitConfig, initCommand } from '../../../agent/init/settings.js';
import { ConfigError } from '../../../agent/core/errors.js';
import { ensureRoleConfig, serverIdCnf } from '../../../agent/init/role-config.js';

const PRIMARY_CNF = '[mysqld]\nlog-bin=mysql-bin\n';
const REPLICA_CNF = '[mysqld]\nread-only=1\n';

let root: string;
let configMapDir: string;
let confDir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'role-config-'));
  configMapDir = join(root, 'config-map');
  confDir = join(root, 'conf.d');
  await mkdir(configMapDir);
  await mkdir(confDir);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function configFor(podName: string): InitConfig {
  return loadCommand({ init: initCommand }, {
    argv: ['init'],
    env: { POD_NAME: podName, CONFIG_MAP_DIR: configMapDir, CONF_DIR: confDir, BACKUP_TOKEN: 'x'.repeat(32), PATH: '/bin', KUBERNETES_SERVICE_HOST: '10.96.0.1' },
    hostname: 'ignored',
    isExecutable: (p) => p === '/bin/mariadb-backup' || p === '/bin/mbstream',
  });
}

const read = (name: string) => readFile(join(confDir, name), 'utf8');

describe('serverIdCnf', () => {
  it('is a [mysqld] section with server-id', () => {
    expect(serverIdCnf(103)).toBe('[mysqld]\nserver-id=103\n');
  });
});

describe('ensureRoleConfig', () => {
  it('writes server-id.cnf and primary.cnf for ordinal 0', async () => {
    await writeFile(join(configMapDir, 'primary.cnf'), PRIMARY_CNF);
    await writeFile(join(configMapDir, 'replica.cnf'), REPLICA_CNF);
    const result = await ensureRoleConfig(configFor('mysql-0'));
    expect(await read('server-id.cnf')).toBe('[mysqld]\nserver-id=100\n');
    expect(await read('primary.cnf')).toBe(PRIMARY_CNF);
    expect((await readdir(confDir)).sort()).toEqual(['primary.cnf', 'server-id.cnf']);
    expect(result.files).toEqual([join(confDir, 'server-id.cnf'), join(confDir, 'primary.cnf')]);
  });

  it('writes server-id 100+N and replica.cnf for a replica', async () => {
    await writeFile(join(configMapDir, 'primary.cnf'), PRIMARY_CNF);
    await writeFile(join(configMapDir, 'replica.cnf'), REPLICA_CNF);
    await ensureRoleConfig(configFor('mysql-2'));
    expect(await read('server-id.cnf')).toBe('[mysqld]\nserver-id=102\n');
    expect(await read('replica.cnf')).toBe(REPLICA_CNF);
    expect((await readdir(confDir)).sort()).toEqual(['replica.cnf', 'server-id.cnf']);
  });

  it("accepts the tutorial's master.cnf and slave.cnf names", async () => {
    await writeFile(join(configMapDir, 'master.cnf'), PRIMARY_CNF);
    await writeFile(join(configMapDir, 'slave.cnf'), REPLICA_CNF);
    await ensureRoleConfig(configFor('mysql-1'));
    expect(await read('replica.cnf')).toBe(REPLICA_CNF);
    await ensureRoleConfig(configFor('mysql-0'));
    expect(await read('primary.cnf')).toBe(PRIMARY_CNF);
  });

  it('prefers replica.cnf over slave.cnf when both exist', async () => {
    await writeFile(join(configMapDir, 'replica.cnf'), REPLICA_CNF);
    await writeFile(join(configMapDir, 'slave.cnf'), '[mysqld]\n# old\n');
    await ensureRoleConfig(configFor('mysql-1'));
    expect(await read('replica.cnf')).toBe(REPLICA_CNF);
  });

  it('refuses a ConfigMap without the role file, naming CONFIG_MAP_DIR and writing nothing', async () => {
    await writeFile(join(configMapDir, 'primary.cnf'), PRIMARY_CNF);
    const err = await ensureRoleConfig(configFor('mysql-1')).then(
      () => expect.unreachable('ensureRoleConfig should have failed'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('CONFIG_MAP_DIR');
    expect((err as Error).message).toContain('replica.cnf');
    expect(await readdir(confDir)).toEqual([]);
  });

  it('writes byte-identical files on a rerun and leaves no temporary files', async () => {
    await writeFile(join(configMapDir, 'replica.cnf'), REPLICA_CNF);
    await ensureRoleConfig(configFor('mysql-1'));
    const first = [await read('server-id.cnf'), await read('replica.cnf')];
    await ensureRoleConfig(configFor('mysql-1'));
    expect([await read('server-id.cnf'), await read('replica.cnf')]).toEqual(first);
    expect((await readdir(confDir)).sort()).toEqual(['replica.cnf', 'server-id.cnf']);
  });

  it("removes the other role's file", async () => {
    await writeFile(join(configMapDir, 'primary.cnf'), PRIMARY_CNF);
    await writeFile(join(configMapDir, 'replica.cnf'), REPLICA_CNF);
    await writeFile(join(confDir, 'replica.cnf'), 'stale');
    await ensureRoleConfig(configFor('mysql-0'));
    expect((await readdir(confDir)).sort()).toEqual(['primary.cnf', 'server-id.cnf']);

    await writeFile(join(confDir, 'primary.cnf'), 'stale');
    await ensureRoleConfig(configFor('mysql-1'));
    expect((await readdir(confDir)).sort()).toEqual(['replica.cnf', 'server-id.cnf']);
  });

  it('replaces a stale server-id.cnf', async () => {
    await writeFile(join(configMapDir, 'replica.cnf'), REPLICA_CNF);
    await writeFile(join(confDir, 'server-id.cnf'), '[mysqld]\nserver-id=1\n');
    await ensureRoleConfig(configFor('mysql-3'));
    expect(await read('server-id.cnf')).toBe('[mysqld]\nserver-id=103\n');
  });
});
