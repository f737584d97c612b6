/**
 * The server's configuration fragments: `server-id.cnf` from the ordinal and the role's file
 * copied from the ConfigMap. Re-runnable: a rerun writes the same bytes.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { readFirst, writeFileAtomic } from '../core/files.js';
import type { Role } from '../core/topology.js';
import type { InitConfig } from './settings.js';

/** ConfigMap file names per role, preferred first; the tutorial's names are still accepted. */
const ROLE_FILES: Record<Role, readonly string[]> = {
  primary: ['primary.cnf', 'master.cnf'],
  replica: ['replica.cnf', 'slave.cnf'],
};

export function serverIdCnf(serverId: number): string {
  return `[mysqld]\nserver-id=${serverId}\n`;
}

/** Writes server-id.cnf and `<role>.cnf` into CONF_DIR and removes the other role's file. */
export async function ensureRoleConfig(config: Pick<InitConfig, 'configMapDir' | 'confDir' | 'role' | 'serverId'>): Promise<{ files: string[] }> {
  const found = await readFirst(config.configMapDir, ROLE_FILES[config.role]);
  if (!found) {
    throw new ConfigError(
      `CONFIG_MAP_DIR=${config.configMapDir} holds no ${ROLE_FILES[config.role].join(' or ')}: mount the ConfigMap there or fix CONFIG_MAP_DIR`,
    );
  }
  const serverIdPath = join(config.confDir, 'server-id.cnf');
  const rolePath = join(config.confDir, `${config.role}.cnf`);
  await writeFileAtomic(serverIdPath, serverIdCnf(config.serverId));
  await writeFileAtomic(rolePath, found.text);
  const other: Role = config.role === 'primary' ? 'replica' : 'primary';
  await rm(join(config.confDir, `${other}.cnf`), { force: true });
  return { files: [serverIdPath, rolePath] };
}
