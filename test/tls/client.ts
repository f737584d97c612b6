/** An HTTPS GET for tests, with a TLS_DIR's files: counts the body, keeps the trailers and the certificate the peer showed. */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { RawResponse } from '../rig/helpers.js';

export interface TlsResponse extends RawResponse {
  /** The serial number of the certificate the server presented. */
  readonly serverSerial: string | null;
}

export function tlsGet(
  url: string,
  files: { readonly ca: string; readonly client?: string },
  options: { readonly headers?: Record<string, string>; readonly method?: string; readonly onData?: (bytes: number) => void } = {},
): Promise<TlsResponse> {
  const own = files.client ? { cert: readFileSync(join(files.client, 'tls.crt')), key: readFileSync(join(files.client, 'tls.key')) } : {};
  return new Promise((resolve) => {
    let serverSerial: string | null = null;
    const req = request(url, { method: options.method ?? 'GET', ca: readFileSync(files.ca), ...own, agent: false, headers: { te: 'trailers', ...options.headers } }, (res) => {
      let bytes = 0;
      const finish = (error: string | null) =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: res.trailers as Record<string, string>, bytes, error, serverSerial });
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        options.onData?.(bytes);
      });
      res.on('end', () => finish(null));
      res.on('error', (err) => finish(err.message));
    });
    req.once('socket', (socket) => socket.once('secureConnect', () => (serverSerial = (socket as TLSSocket).getPeerCertificate().serialNumber ?? null)));
    req.on('error', (err) => resolve({ status: 0, headers: {}, trailers: {}, bytes: 0, error: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`, serverSerial }));
    req.end();
  });
}
