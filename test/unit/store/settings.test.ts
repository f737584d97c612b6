import { describe, expect, it } from 'vitest';
import type { BackupConfig, BackupsConfig } from '../../../agent/backup/settings.js';
import { COMMANDS } from '../../../agent/commands.js';
import { ConfigError } from '../../../agent/core/errors.js';
import { loadCommand } from '../../../agent/core/settings.js';

const TOKEN = '0123456789abcdef0123456789abcdef';
const load = (argv: string[], env: Record<string, string> = {}) =>
  loadCommand(COMMANDS, { argv, env: { BACKUP_TOKEN: TOKEN, ...env }, hostname: 'mysql-backup-2891-xk2p', isExecutable: () => false });
const problems = (argv: string[], env: Record<string, string>) => {
  try {
    load(argv, env);
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
