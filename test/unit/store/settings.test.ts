import { describe, expect, it } from 'vitest';
import type { BackupConfig, BackupsConfig } from '../../../agent/backup/settings.js';
import type { InitConfig } from '../../../agent/init/settings.js';
import { COMMANDS } from '../../../agent/commands.js';
import { ConfigError } from '../../../agent/core/errors.js';
import { loadCommand } from '../../../agent/core/settings.js';

const TOKEN = '0123456789abcdef0123456789abcdef';
const TOOLS = new Set(['/usr/bin/mariadb-backup', '/usr/bin/mbstream']);
const load = (argv: string[], env: Record<string, string> = {}, hostname = 'mysql-backup-2891-xk2p') =>
  loadCommand(COMMANDS, { argv, env: { BACKUP_TOKEN: TOKEN, PATH: '/usr/bin', VOLUME_CLAIMS: 'none', ...env }, hostname, isExecutable: (p) => TOOLS.has(p) });
const problems = (argv: string[], env: Record<string, string>, hostname = 'mysql-0') => {
  try {
    load(argv, env, hostname);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  throw new Error('no ConfigError');
};

describe('store settings', () => {
  it('backup: the store, path style on with an endpoint, defaults from the issue', () => {
    const c = load(['backup'], { BACKUP_STORE_URL: 's3://bkt/prod', S3_ENDPOINT: 'http://127.0.0.1:7480' }) as BackupConfig;
    expect(c.store).toEqual({ bucket: 'bkt', prefix: 'prod/', endpoint: 'http://127.0.0.1:7480', region: 'us-east-1', forcePathStyle: true });
    expect([c.compression, c.keep, c.source.choice]).toEqual(['zstd', 7, { kind: 'auto' }]);
    expect(c.peerHosts).toEqual({ template: '{set}-{ordinal}.{service}', set: 'mysql', service: 'mysql' });
    const aws = load(['backup'], { BACKUP_STORE_URL: 's3://bkt' }) as BackupConfig;
    expect([aws.store.endpoint, aws.store.forcePathStyle]).toEqual([null, false]);
    expect((load(['backup'], { BACKUP_STORE_URL: 's3://bkt', S3_ENDPOINT: 'http://h:1', S3_FORCE_PATH_STYLE: 'false' }) as BackupConfig).store.forcePathStyle).toBe(false);
  });
  it('reports every bad store setting in one pass, one line each, naming the variable', () => {
    const lines = problems(['backup'], { S3_ENDPOINT: 'ftp://x', S3_REGION: 'US East', BACKUP_COMPRESSION: 'gzip', BACKUP_KEEP: '0', BACKUP_SOURCE: 'a b', S3_FORCE_PATH_STYLE: 'yes' });
    for (const name of ['BACKUP_STORE_URL', 'S3_ENDPOINT', 'S3_REGION', 'BACKUP_COMPRESSION', 'BACKUP_KEEP', 'BACKUP_SOURCE', 'S3_FORCE_PATH_STYLE']) {
      expect(lines.filter((l) => l.includes(name)), name).toHaveLength(1);
    }
    expect(lines).toHaveLength(7);
  });
  it('refuses credentials in the endpoint URL without repeating them', () => {
    const [line] = problems(['backups'], { BACKUP_STORE_URL: 's3://bkt', S3_ENDPOINT: 'http://AKIA123:s3cr3t@h:1' });
    expect(line).toContain('AWS_ACCESS_KEY_ID');
    expect(line).not.toContain('s3cr3t');
  });
  it('backups takes --json as a switch, and no JSON variable', () => {
    expect((load(['backups', '--json'], { BACKUP_STORE_URL: 's3://bkt' }) as BackupsConfig).json).toBe(true);
    expect((load(['backups'], { BACKUP_STORE_URL: 's3://bkt', JSON: 'true' }) as BackupsConfig).json).toBe(false);
  });
});

describe('init and the store', () => {
  it('RESTORE_FROM at ordinal 0: latest or an id, and the store it needs', () => {
    const c = load(['init'], { RESTORE_FROM: '20261201T101530Z-3fa9c1', BACKUP_STORE_URL: 's3://bkt/c1' }, 'mysql-0') as InitConfig;
    expect(c.restoreFrom).toEqual({ kind: 'id', id: '20261201T101530Z-3fa9c1' });
    expect(c.store?.bucket).toBe('bkt');
    expect((load(['init'], { RESTORE_FROM: 'latest', BACKUP_STORE_URL: 's3://bkt' }, 'mysql-0') as InitConfig).restoreFrom).toEqual({ kind: 'latest' });
    expect(problems(['init'], { RESTORE_FROM: 'yesterday', BACKUP_STORE_URL: 's3://bkt' }).join('\n')).toMatch(/^RESTORE_FROM="yesterday" is invalid: expected latest or a backup id/);
  });
  it('a store command without BACKUP_STORE_URL, or init that needs the store, is refused naming it', () => {
    expect(problems(['init'], { RESTORE_FROM: 'latest' }).join('\n')).toContain('BACKUP_STORE_URL is not set');
    expect(() => load(['init'], { CLONE_SOURCE: 'backup' }, 'mysql-2')).toThrow(/BACKUP_STORE_URL is not set/);
  });
  it('init that does not use the store does not need it', () => {
    expect((load(['init'], {}, 'mysql-0') as InitConfig).store).toBeNull();
    expect((load(['init'], { RESTORE_FROM: 'latest' }, 'mysql-2') as InitConfig).store).toBeNull();
  });
});
