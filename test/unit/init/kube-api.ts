/**
 * A Kubernetes API for tests: a real HTTPS server on loopback with an openssl-made CA and server
 * certificate (IP SAN 127.0.0.1), answering what the test sets (verbatim-shaped bodies from
 * test/fixtures/kubernetes/), and the service account directory a pod would have: token,
 * ca.crt, namespace. It records each request's path and Authorization header.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const FIXTURES = join(import.meta.dirname, '../../fixtures/kubernetes');

export const fixture = (name: string): unknown => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));

export const TOKEN = 'eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.test-service-account-token.signature';
export const NAMESPACE = 'databases';

export interface Answer {
  readonly status: number;
  readonly body: unknown;
  /** Milliseconds before the answer (a slow API). */
  readonly delayMs?: number;
}

export interface KubeApi {
  readonly host: string;
  readonly port: number;
  /** The service account directory: token, ca.crt, namespace. */
  readonly serviceAccountDir: string;
  /** A CA that did not sign the server's certificate. */
  readonly otherCa: string;
  readonly requests: { path: string; authorization: string | undefined }[];
  answer: Answer;
  close(): Promise<void>;
}

async function openssl(dir: string, ...args: string[]): Promise<void> {
  await execFileP('openssl', args, { cwd: dir });
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`,
    '-days', '1', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
}

export async function startKubeApi(): Promise<KubeApi> {
  const root = await mkdtemp(join(tmpdir(), 'kube-api-'));
  await makeCa(root, 'ca');
  await makeCa(root, 'other-ca');
  await writeFile(join(root, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n');
  await openssl(root, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver');
  await openssl(root, 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.ext');
  const serviceAccountDir = join(root, 'serviceaccount');
  await mkdir(serviceAccountDir);
  await writeFile(join(serviceAccountDir, 'token'), TOKEN);
  await writeFile(join(serviceAccountDir, 'ca.crt'), await readFile(join(root, 'ca.crt')));
  await writeFile(join(serviceAccountDir, 'namespace'), NAMESPACE);

  const api: Omit<KubeApi, 'port' | 'close'> & { port: number } = {
    host: '127.0.0.1',
    port: 0,
    serviceAccountDir,
    otherCa: join(root, 'other-ca.crt'),
    requests: [],
    answer: { status: 200, body: fixture('pvc-list-new-cluster') },
  };
  const server: Server = createServer({ key: await readFile(join(root, 'server.key')), cert: await readFile(join(root, 'server.crt')) }, (req, res) => {
    api.requests.push({ path: req.url ?? '', authorization: req.headers.authorization });
    const { status, body, delayMs } = api.answer;
    setTimeout(() => res.writeHead(status, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body)), delayMs ?? 0);
  });
  await new Promise<void>((r) => server.listen(0, api.host, r));
  api.port = (server.address() as AddressInfo).port;
  return Object.assign(api, {
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await rm(root, { recursive: true, force: true });
    },
  });
}
