/**
 * Owns child processes: every child is spawned in its own process group, tied to an
 * AbortSignal, killed as a group (SIGKILL for tools that ignore SIGTERM, such as
 * mariadb-backup) and killed again from a process 'exit' hook, so no exit path of the agent
 * leaves one behind. `done` settles only when the child has exited and its pipes are closed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { SubprocessError } from '../core/errors.js';
import type { Logger } from '../core/log.js';

export interface ChildSpec {
  readonly command: string;
  readonly args: readonly string[];
  /** The child's own variables; it inherits only `INHERITED` from the agent besides. */
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: 'pipe' | 'ignore';
  readonly stdout: 'pipe' | 'ignore';
  readonly signal: AbortSignal;
  /** mariadb-backup and xtrabackup block SIGTERM: they must get SIGKILL. */
  readonly killWith: 'SIGKILL' | 'SIGTERM';
  readonly log: Logger;
}

export interface OwnedChild {
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  /** Resolves on exit 0; rejects with SubprocessError (with the stderr tail) otherwise. */
  readonly done: Promise<void>;
  /** The last lines the child wrote to stderr (some tools report errors there and exit 0). */
  readonly stderrTail: () => string;
  kill(): void;
}

/**
 * What a child inherits from the agent's environment: where programs are, the home directory
 * (the tools read `~/.my.cnf`), where temporary files go, the time zone and the locale. Nothing
 * else: the pod's environment holds BACKUP_TOKEN, MYSQL_PASSWORD and REPLICATION_PASSWORD.
 */
const INHERITED = /^(PATH|HOME|TMPDIR|TZ|LANG|LANGUAGE|LC_[A-Z_]+)$/;

/** A child's whole environment: the inherited variables of `parent`, then its own. */
export function childEnvironment(parent: NodeJS.ProcessEnv, own: Readonly<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) if (value !== undefined && INHERITED.test(name)) env[name] = value;
  return { ...env, ...own };
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

/** Whether a stderr line is per-file chatter (one per table) rather than news. */
const ROUTINE = /^\[\d+\] .*(Copying|Streaming|\.\.\.done|Compressing|copied successfully)/;
const TAIL_LINES = 5;

export function spawnOwned(spec: ChildSpec): OwnedChild {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const child of live) killGroup(child, 'SIGKILL');
    });
  }
  const name = spec.command.split('/').at(-1)!;
  const child = spawn(spec.command, [...spec.args], {
    env: childEnvironment(process.env, spec.env),
    stdio: [spec.stdin, spec.stdout, 'pipe'],
    detached: true,
  });
  live.add(child);
  const log = spec.log.child({ tool: name, child_pid: child.pid });

  const tail: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    if (ROUTINE.test(line)) log.debug({ stderr: line }, 'tool output');
    else log.info({ stderr: line }, 'tool output');
  });

  let escalation: NodeJS.Timeout | undefined;
  const kill = () => {
    killGroup(child, spec.killWith);
    if (spec.killWith === 'SIGTERM' && !escalation) {
      escalation = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
      escalation.unref();
    }
  };
  const onAbort = () => kill();
  if (spec.signal.aborted) queueMicrotask(kill);
  else spec.signal.addEventListener('abort', onAbort, { once: true });

  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => {
      live.delete(child);
      spec.signal.removeEventListener('abort', onAbort);
      reject(new SubprocessError(name, null, null, err.message));
    });
    child.once('close', (code, signal) => {
      live.delete(child);
      clearTimeout(escalation);
      spec.signal.removeEventListener('abort', onAbort);
      // The group may hold grandchildren (a wrapper script's tool): they go with it.
      killGroup(child, 'SIGKILL');
      if (code === 0) resolve();
      else reject(new SubprocessError(name, code, signal, tail.join(' | ')));
    });
  });
  // Callers may settle on another promise first; an unobserved rejection must not crash us.
  done.catch(() => {});

  return {
    pid: child.pid ?? -1,
    stdin: child.stdin,
    stdout: child.stdout,
    done,
    stderrTail: () => tail.join(' | '),
    kill,
  };
}
