/**
 * Certificates for tests, made by the test run itself with Debian's `openssl`: a CA, another CA,
 * and folders in the layout of a cert-manager Certificate's Secret (tls.crt, tls.key, ca.crt)
 * for a node (its loopback address and name as SANs), a client, an expired certificate, one
 * from the other CA. Everything lives in one temporary directory that `destroy()` removes.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** One certificate to issue, and the folder it goes to. */
export interface Issue {
  /** The folder's name under the PKI's root, and the certificate's CN. */
  readonly name: string;
  /** SANs: IP addresses and DNS names (none for a client certificate). */
  readonly ips?: readonly string[];
  readonly dns?: readonly string[];
  /** Valid from 2020-01-01 to 2020-01-02: expired long ago. */
  readonly expired?: boolean;
  /** Which CA signs it (default: the CA). */
  readonly signer?: 'ca' | 'other-ca';
  /** Which CA's certificate goes into the folder's ca.crt (default: the CA). */
  readonly trusts?: 'ca' | 'other-ca';
}

export interface Pki {
  readonly root: string;
  /** The CA's certificate. */
  readonly caCert: string;
  /** Issues a certificate into `<root>/<name>/` (tls.crt, tls.key, ca.crt) and returns that folder. */
  issue(issue: Issue): Promise<string>;
  destroy(): Promise<void>;
}

const CA_CONFIG = `[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = issued
serial = serial
default_md = sha256
policy = any_name
unique_subject = no
[any_name]
commonName = supplied
`;

export async function createPki(): Promise<Pki> {
  const root = await mkdtemp(join(tmpdir(), 'mysql-agent-pki-'));
  const openssl = (...args: string[]) => execFileP('openssl', args, { cwd: root });
  for (const ca of ['ca', 'other-ca']) {
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`,
      '-days', '30', '-subj', `/CN=mysql-agent test ${ca}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  }
  await writeFile(join(root, 'ca.cnf'), CA_CONFIG);
  await writeFile(join(root, 'index.txt'), '');
  await writeFile(join(root, 'serial'), '1000\n');
  await mkdir(join(root, 'issued'));
  let sequence = 0;
  return {
    root,
    caCert: join(root, 'ca.crt'),
    async issue(issue) {
      const dir = join(root, issue.name);
      await mkdir(dir, { recursive: true });
      const base = `req-${++sequence}`;
      const sans = [...(issue.ips ?? []).map((ip) => `IP:${ip}`), ...(issue.dns ?? []).map((d) => `DNS:${d}`)];
      await writeFile(
        join(root, `${base}.ext`),
        [...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []), 'extendedKeyUsage=serverAuth,clientAuth', 'keyUsage=critical,digitalSignature,keyEncipherment', ''].join('\n'),
      );
      await openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'tls.key'), '-out', `${base}.csr`, '-subj', `/CN=${issue.name}`);
      const signer = issue.signer ?? 'ca';
      const validity = issue.expired ? ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z'] : ['-days', '30'];
      await openssl('ca', '-batch', '-notext', '-config', 'ca.cnf', '-cert', `${signer}.crt`, '-keyfile', `${signer}.key`, '-in', `${base}.csr`,
        '-out', join(dir, 'tls.crt'), '-extfile', `${base}.ext`, ...validity);
      await copyFile(join(root, `${issue.trusts ?? 'ca'}.crt`), join(dir, 'ca.crt'));
      return dir;
    },
    destroy: () => rm(root, { recursive: true, force: true }),
  };
}
