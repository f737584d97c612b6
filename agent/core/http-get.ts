/**
 * One small HTTP(S) GET whose whole answer is read into memory, bounded in size and in time:
 * peers' /status and the Kubernetes API's claim list. The request itself (http or https,
 * address, headers, CA) is the caller's; a system error keeps its code (ENOTFOUND, ECONNREFUSED).
 */
import type { ClientRequest, IncomingMessage } from 'node:http';

export interface GetLimits {
  readonly timeoutMs: number;
  readonly maxChars: number;
  /** The error when the whole exchange takes longer than timeoutMs. */
  readonly timeout: () => Error;
  readonly tooLarge: () => Error;
}

export function getText(start: (onResponse: (res: IncomingMessage) => void) => ClientRequest, limits: GetLimits): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = start((res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        if (text.length > limits.maxChars) req.destroy(limits.tooLarge());
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(limits.timeout()), limits.timeoutMs);
    req.once('close', () => clearTimeout(timer));
    req.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code && !err.message.includes(err.code) ? Object.assign(new Error(`${err.message} (${err.code})`), { code: err.code }) : err),
    );
    req.end();
  });
}
