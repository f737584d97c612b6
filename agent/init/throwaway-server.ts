/**
 * A throwaway server on a restored datadir, reachable only by this process: its own socket and
 * files in a run directory, bound to 127.0.0.1 on a free port, `--skip-grant-tables` (the
 * restored accounts are not known here), no binary log, no replication. The restore drill checks
 * tables on one; a point-in-time restore replays binary logs into one. Always stopped on return.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { BackupError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { type Db, createDb, waitForServer } from '../mysql/db.js';
import type { ToolCommand } from '../stream/backup-tool.js';
import { spawnOwned } from '../stream/child.js';

const SERVER_START_TIMEOUT_MS = 120_000;

/** Where a throwaway server keeps its files: `<runDir>/<name>.sock`, `.pid`, `.err`, and `<runDir>/tmp`. */
export interface ThrowawayFiles {
  readonly dataDir: string;
  readonly runDir: string;
  readonly name: string;
}

export const socketOf = (f: ThrowawayFiles) => join(f.runDir, `${f.name}.sock`);

/**
 * `<server> --no-defaults --datadir=D --socket=S --bind-address=127.0.0.1 --port=P
 *  --skip-grant-tables --skip-slave-start --skip-log-bin ...`.
 */
export function throwawayServerCommand(server: string, f: ThrowawayFiles, port: number, asRoot: boolean): ToolCommand {
  return {
    command: server,
    args: [
      '--no-defaults',
      `--datadir=${f.dataDir}`,
      `--socket=${socketOf(f)}`,
      `--pid-file=${join(f.runDir, `${f.name}.pid`)}`,
      `--log-error=${join(f.runDir, `${f.name}.err`)}`,
      `--tmpdir=${join(f.runDir, 'tmp')}`,
      '--bind-address=127.0.0.1',
      `--port=${port}`,
      '--skip-grant-tables',
      '--skip-slave-start',
      '--skip-log-bin',
      '--innodb-buffer-pool-size=64M',
      ...(asRoot ? ['--user=root'] : []),
    ],
    // Nothing of its own: spawnOwned passes it only PATH, HOME, TMPDIR, TZ and the locale.
    env: {},
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function errorLogTail(f: ThrowawayFiles): Promise<string> {
  const text = await readFile(join(f.runDir, `${f.name}.err`), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).slice(-3).join(' | ') || 'no error log';
}

/**
 * Starts the server (`<runDir>/tmp` must exist), waits until it answers, runs `use` with a pool
 * on it, and stops it (SIGTERM: a clean InnoDB shutdown) whatever happened; the server exiting
 * on its own fails `use` with its error log's tail. `what` names it in errors ("the drill's server").
 */
export async function withThrowawayServer<T>(
  o: { readonly server: string; readonly files: ThrowawayFiles; readonly what: string; readonly log: Logger; readonly signal: AbortSignal },
  use: (db: Db, port: number) => Promise<T>,
): Promise<T> {
  const port = await freePort();
  const stop = new AbortController();
  const server = spawnOwned({
    ...throwawayServerCommand(o.server, o.files, port, process.getuid?.() === 0),
    stdin: 'ignore',
    stdout: 'ignore',
    signal: AbortSignal.any([o.signal, stop.signal]),
    killWith: 'SIGTERM',
    log: o.log,
  });
  const db = createDb({ host: '127.0.0.1', port, socketPath: socketOf(o.files), user: 'root', password: '' });
  try {
    const exited = server.done.then(
      async () => {
        throw new BackupError(`${o.what} exited: ${await errorLogTail(o.files)}`);
      },
      async (err: unknown) => {
        throw new BackupError(`${o.what} failed: ${errorMessage(err)}; ${await errorLogTail(o.files)}`);
      },
    );
    exited.catch(() => {});
    const waiting = AbortSignal.any([o.signal, AbortSignal.timeout(SERVER_START_TIMEOUT_MS)]);
    await Promise.race([waitForServer(db, o.log, waiting), exited]);
    return await Promise.race([use(db, port), exited]);
  } finally {
    await db.end().catch(() => {});
    stop.abort();
    await server.done.catch(() => {});
  }
}
