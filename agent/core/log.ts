/**
 * The root logger: pino JSON on stdout, one event per line, with the pod's identity bound so
 * that every line can be grepped by ordinal and role.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: {
  level: string;
  bindings: Record<string, string | number | null>;
  /** 1 (stdout) by default; `plan` logs to 2 so that stdout holds only statements. */
  fd?: 1 | 2;
}): Logger {
  return pino(
    {
      level: options.level,
      base: { pid: process.pid, ...options.bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Secrets never reach a log line, even if some code path logs a whole object.
      redact: {
        paths: ['password', '*.password', 'token', '*.token', 'headers.authorization', 'req.headers.authorization'],
        censor: '***',
      },
    },
    pino.destination({ fd: options.fd ?? 1, sync: true }),
  );
}
