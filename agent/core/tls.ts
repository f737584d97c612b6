/**
 * TLS on the agent's port. TLS_DIR holds a cert-manager Certificate's Secret as Kubernetes
 * mounts it (tls.crt, tls.key, ca.crt); its files are checked at start-up (a missing file, a key
 * that is not the certificate's, an expired certificate: one line each, exit 2). This is the one
 * place that turns them into TLS options: the sidecar's server options, and the transport every
 * client of the agent uses (init's clone and /status probes, ordinal 0's guard, `status`), which
 * verifies the peer against ca.crt and its host name and names the cause when it cannot.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { type Socket, type OnReadOpts, connect as netConnect, isIP } from 'node:net';
import { join } from 'node:path';
import { X509Certificate, createPrivateKey, http, https, tlsConnect } from './builtins.js';
import { setTimeout as delay } from 'node:timers/promises';
import { type Setting, type SettingsReader, directory, oneOf } from './settings.js';

/** The files of a kubernetes.io/tls Secret with its issuer's CA, as cert-manager writes them. */
export const TLS_FILES = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' } as const;
export type TlsFile = keyof typeof TLS_FILES;

export const TLS_DIR: Setting<string | null> = {
  ...directory('TLS_DIR', "folder with tls.crt, tls.key and ca.crt (a cert-manager Certificate's Secret): serve and fetch over TLS only", ''),
  shown: '(none: plain HTTP)',
  fallback: null,
};
export type ClientAuth = 'none' | 'require';
export const TLS_CLIENT_AUTH = oneOf<ClientAuth>(
  'TLS_CLIENT_AUTH',
  'require: /backup only for clients presenting a certificate of the same CA (with TLS_DIR)',
  ['none', 'require'],
  'none',
);

/** TLS_DIR and the paths of its files. */
export interface TlsDir {
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export const tlsPaths = (dir: string): TlsDir => ({
  dir,
  cert: join(dir, TLS_FILES.cert),
  key: join(dir, TLS_FILES.key),
  ca: join(dir, TLS_FILES.ca),
});

/** The contents of the files; null for one that could not be read. */
export type TlsContents = { readonly [F in TlsFile]: Buffer | null };

/** The checked contents: what a server or client is built from. */
export type TlsMaterial = { readonly [F in TlsFile]: Buffer };

const RENEW = 'renew the Certificate (kubectl describe certificate; cert-manager renews before expiry) or mount a valid one';

function validity(dir: string, file: string, cert: X509Certificate, now: Date): string | null {
  if (now < new Date(cert.validFrom)) return `TLS_DIR=${dir}: ${file} is not valid before ${cert.validFrom}: check the clocks, or ${RENEW}`;
  if (now > new Date(cert.validTo)) return `TLS_DIR=${dir}: ${file} expired on ${cert.validTo}: ${RENEW}`;
  return null;
}

/**
 * Every problem with the files this command `needs`, one line each naming the file and the
 * fix; empty when they serve. Pure: the contents are read by the caller.
 */
export function tlsProblems(dir: string, contents: Partial<TlsContents>, needs: readonly TlsFile[], now: Date): string[] {
  const problems: string[] = [];
  const parsed: { cert?: X509Certificate; ca?: X509Certificate } = {};
  for (const file of needs) {
    const name = TLS_FILES[file];
    const content = contents[file];
    if (content === null || content === undefined) {
      problems.push(`TLS_DIR=${dir}: ${name} is missing or unreadable: mount the Certificate's Secret (tls.crt, tls.key, ca.crt) there, or unset TLS_DIR for plain HTTP`);
      continue;
    }
    if (file === 'key') continue;
    try {
      parsed[file] = new X509Certificate(content);
    } catch {
      problems.push(`TLS_DIR=${dir}: ${name} is not a PEM certificate: mount the Certificate's Secret as it is`);
    }
  }
  for (const file of ['cert', 'ca'] as const) {
    const cert = parsed[file];
    const problem = cert && validity(dir, TLS_FILES[file], cert, now);
    if (problem) problems.push(problem);
  }
  if (parsed.cert && needs.includes('key') && contents.key) {
    let matches = false;
    try {
      matches = parsed.cert.checkPrivateKey(createPrivateKey(contents.key));
    } catch {
      problems.push(`TLS_DIR=${dir}: tls.key is not a PEM private key: mount the Certificate's Secret as it is`);
      return problems;
    }
    if (!matches) problems.push(`TLS_DIR=${dir}: tls.key does not match tls.crt: mount the key and certificate of one Secret (a renewal half-copied?)`);
  }
  return problems;
}

const readOrNull = (path: string): Buffer | null => {
  try {
    return readFileSync(path);
  } catch {
    return null;
  }
};

export function readTlsContents(tls: TlsDir): TlsContents {
  return { cert: readOrNull(tls.cert), key: readOrNull(tls.key), ca: readOrNull(tls.ca) };
}

/**
 * TLS_DIR, its files checked for what this command needs (the sidecar and init: all three; status:
 * ca.crt); null when unset. A problem is recorded for the one-pass report (exit 2).
 */
export function readTlsDir(read: SettingsReader, needs: readonly TlsFile[], now: Date = new Date()): TlsDir | null {
  const dir = read.get(TLS_DIR);
  if (dir === null) return null;
  const tls = tlsPaths(dir);
  for (const problem of tlsProblems(dir, readTlsContents(tls), needs, now)) read.problem(problem);
  return tls;
}

/** The sidecar's TLS server options: TLS 1.2 at least; a client certificate asked for (not required: probes have none) with `require`. */
export function serverTlsOptions(material: TlsMaterial, clientAuth: ClientAuth) {
  return {
    cert: material.cert,
    key: material.key,
    ca: material.ca,
    minVersion: 'TLSv1.2' as const,
    requestCert: clientAuth === 'require',
    // /healthz and /readyz answer the kubelet, which presents no certificate; /backup checks
    // `authorized` itself.
    rejectUnauthorized: false,
  };
}

/**
 * Rotation: cert-manager renews the Secret in place and the kubelet swaps the mounted files.
 * Every `intervalMs` the files are read again; changed files that pass the start-up checks are
 * handed to `onChange` (the server's new secure context: connections in flight keep theirs),
 * others to `onProblems` once per change, the old ones kept.
 */
export async function watchTlsFiles(
  tls: TlsDir,
  current: TlsContents,
  intervalMs: number,
  signal: AbortSignal,
  on: { readonly change: (material: TlsMaterial) => void; readonly problems: (problems: string[]) => void },
): Promise<void> {
  const same = (a: TlsContents, b: TlsContents) => (Object.keys(TLS_FILES) as TlsFile[]).every((f) => (a[f] === null ? b[f] === null : b[f] !== null && a[f].equals(b[f])));
  let seen = current;
  while (!signal.aborted) {
    await delay(intervalMs, undefined, { signal }).catch(() => {});
    if (signal.aborted) return;
    const read = async (path: string) => readFile(path).catch(() => null);
    const next: TlsContents = { cert: await read(tls.cert), key: await read(tls.key), ca: await read(tls.ca) };
    if (same(seen, next)) continue;
    seen = next;
    const problems = tlsProblems(tls.dir, next, ['cert', 'key', 'ca'], new Date());
    if (problems.length > 0) on.problems(problems);
    else on.change(next as TlsMaterial);
  }
}

/** Where a raw connection goes (the upgraded GET), and the buffer it reads into. */
export interface RawConnect {
  readonly host: string;
  readonly port: number;
  readonly onread: OnReadOpts;
}

/** How the agent's clients reach a peer's agent: http, or https verified against ca.crt and the host name. */
export interface AgentTransport {
  readonly scheme: 'http' | 'https';
  request(options: RequestOptions, onResponse?: (res: IncomingMessage) => void): ClientRequest;
  /** A connection for HTTP written by hand: TCP, or TLS checked as `request` checks it. */
  connect(options: RawConnect): Socket;
}

export const PLAIN_HTTP: AgentTransport = {
  scheme: 'http',
  request: (options, onResponse) => http.request(options, onResponse),
  connect: (options) => netConnect(options),
};

/**
 * The transport of every client in the agent. With TLS_DIR the files are read at each request,
 * so a renewed Secret is used without a restart; the peer's certificate is checked against
 * ca.crt and the host asked for (Node's default identity check: DNS or IP SANs), and this pod's
 * own certificate is presented when it has one (TLS_CLIENT_AUTH=require on the peers).
 */
export function agentTransport(tls: TlsDir | null): AgentTransport {
  if (tls === null) return PLAIN_HTTP;
  const checked = () => {
    const own = { cert: readOrNull(tls.cert), key: readOrNull(tls.key) };
    return { ca: readFileSync(tls.ca), ...(own.cert && own.key ? { cert: own.cert, key: own.key } : {}), rejectUnauthorized: true, minVersion: 'TLSv1.2' as const };
  };
  return {
    scheme: 'https',
    // A pooled connection would keep the old certificates after a renewal.
    request: (options, onResponse) => https.request({ ...options, ...checked(), agent: false }, onResponse),
    // SNI as https.request sends it: the host name, never an address.
    connect: (options) => tlsConnect({ ...options, ...checked(), ...(isIP(options.host) ? {} : { servername: options.host }) }),
  };
}

const UNKNOWN_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * A TLS failure of a client as its cause and the fix, or null when the error is not one. None
 * is helped by retrying the same peer with the same files.
 */
export function tlsFailure(err: NodeJS.ErrnoException & { reason?: string }): string | null {
  const code = err.code ?? '';
  if (UNKNOWN_CA.has(code)) {
    return `its certificate is not signed by our ca.crt (unknown CA, ${code}): every pod must mount a Certificate of the same issuer in TLS_DIR`;
  }
  if (code === 'CERT_HAS_EXPIRED') return `its certificate has expired (CERT_HAS_EXPIRED): renew that pod's Certificate`;
  if (code === 'CERT_NOT_YET_VALID') return `its certificate is not valid yet (CERT_NOT_YET_VALID): check the clocks`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `its certificate is not for this name (name mismatch: ${err.reason ?? err.message}): the Certificate's dnsNames must cover the pod names, e.g. *.<service>`;
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || (code === 'EPROTO' && /wrong version number|packet length/.test(err.message))) {
    return `it does not speak TLS (${code}): set TLS_DIR on every pod, or on none`;
  }
  if (/^ERR_SSL_(TLSV1|SSLV3|TLSV13)_ALERT_/.test(code)) return `it refused our certificate (${code}): mount this pod's Certificate of the same issuer in TLS_DIR`;
  return null;
}
