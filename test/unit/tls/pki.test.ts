/** The test PKI makes what the TLS tests rely on: openssl itself checks each certificate. */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Pki, createPki } from '../../tls/pki.js';

const execFileP = promisify(execFile);
let pki: Pki;
const verify = (dir: string, ca = join(dir, 'ca.crt')) =>
  execFileP('openssl', ['verify', '-CAfile', ca, join(dir, 'tls.crt')]).then(() => 'OK', (err: { stdout: string; stderr: string }) => err.stdout + err.stderr);

beforeAll(async () => {
  pki = await createPki();
});
afterAll(async () => {
  const root = pki.root;
  await pki.destroy();
  expect(existsSync(root)).toBe(false);
});

describe('test PKI', () => {
  it('issues a node certificate with its loopback address and name as SANs, signed by the CA', async () => {
    const dir = await pki.issue({ name: 'mysql-1', ips: ['127.0.0.11'], dns: ['mysql-1.mysql'] });
    expect(await verify(dir)).toBe('OK');
    const cert = new X509Certificate(readFileSync(join(dir, 'tls.crt')));
    expect(cert.subjectAltName).toBe('IP Address:127.0.0.11, DNS:mysql-1.mysql');
    expect(cert.checkHost('mysql-1.mysql')).toBe('mysql-1.mysql');
    expect(cert.checkIP('127.0.0.11')).toBe('127.0.0.11');
    expect(cert.checkIP('127.0.0.12')).toBeUndefined();
  });

  it('issues an expired certificate, and one from another CA', async () => {
    const expired = await pki.issue({ name: 'expired', ips: ['127.0.0.11'], expired: true });
    expect(await verify(expired)).toContain('certificate has expired');
    const foreign = await pki.issue({ name: 'foreign', ips: ['127.0.0.11'], signer: 'other-ca' });
    expect(await verify(foreign)).toContain('unable to get local issuer certificate');
    expect(await verify(foreign, join(pki.root, 'other-ca.crt'))).toBe('OK');
  });

  it('issues a client certificate without SANs', async () => {
    const dir = await pki.issue({ name: 'client' });
    expect(await verify(dir)).toBe('OK');
    expect(new X509Certificate(readFileSync(join(dir, 'tls.crt'))).subjectAltName).toBeUndefined();
  });
});
