/**
 * TLS_DIR, TLS_CLIENT_AUTH and REPLICATION_TLS as each command reads them, with real files made
 * by the test PKI: a missing file, a key of another certificate, an expired certificate are each
 * one line naming the file and the fix, all in one pass.
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../agent/commands.js';
import { ConfigError } from '../../../agent/core/errors.js';
import { loadCommand } from '../../../agent/core/settings.js';
import type { InitConfig } from '../../../agent/init/settings.js';
import type { SidecarConfig } from '../../../agent/sidecar/settings.js';
import type { StatusConfig } from '../../../agent/status/settings.js';
import { type Pki, createPki } from '../../tls/pki.js';

let pki: Pki;
let good: string;
let expired: string;
let other: string;

beforeAll(async () => {
  pki = await createPki();
  good = await pki.issue({ name: 'mysql-1', ips: ['127.0.0.11'], dns: ['mysql-1.mysql'] });
  expired = await pki.issue({ name: 'expired', ips: ['127.0.0.11'], expired: true });
  other = await pki.issue({ name: 'other', ips: ['127.0.0.11'] });
});
afterAll(() => pki.destroy());

const ENV = { PATH: '/usr/bin', BACKUP_TOKEN: '0123456789abcdef0123', VOLUME_CLAIMS: 'none' };
const executables = new Set(['/usr/bin/mariadb-backup', '/usr/bin/mbstream']);
const load = <C = SidecarConfig>(argv: string[], env: Record<string, string>) =>
  loadCommand(COMMANDS, { argv, env: { ...ENV, ...env }, hostname: 'mysql-1', isExecutable: (p) => executables.has(p) }) as C;
function problems(argv: string[], env: Record<string, string>): string[] {
  try {
    load(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message.split('\n');
  }
  throw new Error('expected a ConfigError');
}

describe('TLS_DIR', () => {
  it('is plain HTTP when unset, and the three paths when set', () => {
    expect(load(['sidecar'], {}).tls).toBeNull();
    const paths = { dir: good, cert: join(good, 'tls.crt'), key: join(good, 'tls.key'), ca: join(good, 'ca.crt') };
    expect(load(['sidecar'], { TLS_DIR: good }).tls).toEqual({ dir: paths, clientAuth: 'none' });
    expect(load<InitConfig>(['init'], { TLS_DIR: good }).tls).toEqual(paths);
  });

  it('names a missing file, with the fix', async () => {
    const dir = join(pki.root, 'no-key');
    await mkdir(dir);
    await copyFile(join(good, 'tls.crt'), join(dir, 'tls.crt'));
    await copyFile(join(good, 'ca.crt'), join(dir, 'ca.crt'));
    for (const command of ['sidecar', 'init']) {
      expect(problems([command], { TLS_DIR: dir })).toEqual([
        `TLS_DIR=${dir}: tls.key is missing or unreadable: mount the Certificate's Secret (tls.crt, tls.key, ca.crt) there, or unset TLS_DIR for plain HTTP`,
      ]);
    }
    // status verifies peers only: ca.crt is all it needs.
    await rm(join(dir, 'tls.crt'));
    expect(load<StatusConfig>(['status'], { TLS_DIR: dir }).tls?.ca).toBe(join(dir, 'ca.crt'));
    await rm(join(dir, 'ca.crt'));
    expect(problems(['status'], { TLS_DIR: dir })).toEqual([
      `TLS_DIR=${dir}: ca.crt is missing or unreadable: mount the Certificate's Secret (tls.crt, tls.key, ca.crt) there, or unset TLS_DIR for plain HTTP`,
    ]);
  });

  it('names a key that is not the certificate\'s', async () => {
    const dir = join(pki.root, 'mixed');
    await mkdir(dir);
    await copyFile(join(good, 'tls.crt'), join(dir, 'tls.crt'));
    await copyFile(join(other, 'tls.key'), join(dir, 'tls.key'));
    await copyFile(join(good, 'ca.crt'), join(dir, 'ca.crt'));
    expect(problems(['sidecar'], { TLS_DIR: dir })).toEqual([
      `TLS_DIR=${dir}: tls.key does not match tls.crt: mount the key and certificate of one Secret (a renewal half-copied?)`,
    ]);
  });

  it('names an expired certificate with its date, and every other problem in the same pass', () => {
    const lines = problems(['sidecar'], { TLS_DIR: expired, TLS_CLIENT_AUTH: 'sometimes', REPLICATION_TLS: 'maybe' });
    expect(lines).toEqual([
      `TLS_DIR=${expired}: tls.crt expired on Jan  2 00:00:00 2020 GMT: renew the Certificate (kubectl describe certificate; cert-manager renews before expiry) or mount a valid one`,
      'TLS_CLIENT_AUTH="sometimes" is invalid: expected none, require',
      'REPLICATION_TLS="maybe" is invalid: expected off, required, verify-ca, verify-identity',
    ]);
  });
});

describe('TLS_CLIENT_AUTH and REPLICATION_TLS', () => {
  it('TLS_CLIENT_AUTH=require needs TLS_DIR', () => {
    expect(problems(['sidecar'], { TLS_CLIENT_AUTH: 'require' })).toEqual([
      'TLS_CLIENT_AUTH=require needs TLS_DIR: client certificates are checked against its ca.crt; set TLS_DIR, or TLS_CLIENT_AUTH=none',
    ]);
    expect(load(['sidecar'], { TLS_DIR: good, TLS_CLIENT_AUTH: 'require' }).tls?.clientAuth).toBe('require');
  });

  it('REPLICATION_TLS verify-ca and verify-identity take the CA from TLS_DIR, and need it', () => {
    expect(load(['sidecar'], { REPLICATION_TLS: 'required' }).replication.tls).toEqual({ mode: 'required', caFile: null });
    expect(load(['sidecar'], { REPLICATION_TLS: 'verify-ca', TLS_DIR: good }).replication.tls).toEqual({ mode: 'verify-ca', caFile: join(good, 'ca.crt') });
    for (const mode of ['verify-ca', 'verify-identity']) {
      for (const command of ['sidecar', 'plan']) {
        expect(problems([command], { REPLICATION_TLS: mode })).toEqual([
          `REPLICATION_TLS=${mode} needs TLS_DIR: its ca.crt is what the primary's certificate is checked against; set TLS_DIR, or REPLICATION_TLS=required to encrypt without checking`,
        ]);
      }
    }
    // plan runs anywhere: it names the path the server reads, without the files.
    expect(load(['plan'], { REPLICATION_TLS: 'verify-identity', TLS_DIR: '/etc/mysql-agent/tls' }).replication.tls).toEqual({
      mode: 'verify-identity',
      caFile: '/etc/mysql-agent/tls/ca.crt',
    });
  });
});
