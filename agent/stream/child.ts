/**
 * Owns child processes: every child is spawned in its own process group, tied to an
 * AbortSignal, killed as a group (SIGKILL for tools that ignore SIGTERM, such as
 * mariadb-backup), its group killed again the moment the child itself exits (whatever it left
 * there, a wrapper's tool or a `sleep &`, is an orphan of ours) and from a process 'exit' hook,
 * so no exit path of the agent leaves a process behind. `done` settles when the child has
 * exited and its pipes are closed, which the group's end guarantees.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { SubprocessError } from '../core/errors.js';
import type { Logger } from '../core/log.js';

export interface ChildSpec {
  readonly command: string;
  readonly args: readonly string[];
  /** The child's own variables; it inherits only `INHERITED` from the agent besides. */
  readonly env: Readonly<Record<string, string>>;
  /**
   * A socket (a clone's connection) or a Readable with a file descriptor (another child's stdout)
   * is handed over as the child's stdin: it reads directly, no byte passes through JavaScript.
   */
  readonly stdin: 'pipe' | 'ignore' | Readable;
  readonly stdout: 'pipe' | 'ignore';
  readonly signal: AbortSignal;
  /** mariadb-backup and xtrabackup block SIGTERM: they must get SIGKILL. */
  readonly killWith: 'SIGKILL' | 'SIGTERM';
  readonly log: Logger;
  /** A stderr line worth keeping wherever it comes (`watched()`): tools bury their cause under the tail. */
  readonly watchFor?: RegExp;
  /** Its stderr is a report the agent asked for (zstd -vv), not news: logged at debug. */
  readonly reportOnStderr?: boolean;
}

export interface OwnedChild {
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  /** Resolves on exit 0; rejects with SubprocessError (with the stderr tail) otherwise. */
  readonly done: Promise<void>;
  /** The last lines the child wrote to stderr (some tools report errors there and exit 0). */
  readonly stderrTail: () => string;
  /** The first stderr line that matched `watchFor`, or null. */
  readonly watched: () => string | null;
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

/** The process groups of children not yet closed; the 'exit' hook ends them all. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

/** Signals every process in the group; the group may outlive the child that leads it. */
function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: nobody is left in the group.
  }
}

/** Whether a stderr line is per-file chatter (one per table) rather than news. */
const ROUTINE = /^\[\d+\] .*(Copying|Streaming|\.\.\.done|Compressing|copied successfully)/;
const TAIL_LINES = 5;

export function spawnOwned(spec: ChildSpec): OwnedChild {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
    });
  }
  const name = spec.command.split('/').at(-1)!;
  const child = spawn(spec.command, [...spec.args], {
    env: childEnvironment(process.env, spec.env),
    stdio: [spec.stdin, spec.stdout, 'pipe'],
    detached: true,
  });
  // Undefined when the spawn failed ('error' follows). Once the child is closed its group is
  // empty and the number may be reused: never signal it again.
  const pgid = child.pid;
  if (pgid !== undefined) liveGroups.add(pgid);
  const killAll = (signal: NodeJS.Signals) => {
    if (pgid !== undefined && liveGroups.has(pgid)) killGroup(pgid, signal);
  };
  const log = spec.log.child({ tool: name, child_pid: child.pid });

  const tail: string[] = [];
  let watched: string | null = null;
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (watched === null && spec.watchFor?.test(line)) watched = line;
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    if (spec.reportOnStderr || ROUTINE.test(line)) log.debug({ stderr: line }, 'tool output');
    else log.info({ stderr: line }, 'tool output');
  });

  // One clock from the first request; cleared on close, so it never holds the agent's exit (the
  // child's own handle does until then).
  let escalation: NodeJS.Timeout | undefined;
  const kill = () => {
    killAll(spec.killWith);
    if (spec.killWith === 'SIGTERM') escalation ??= setTimeout(() => killAll('SIGKILL'), 5000);
  };
  // Removed on close and on a failed spawn; a signal aborts only once.
  const onAbort = () => kill();
  if (spec.signal.aborted) queueMicrotask(kill);
  else spec.signal.addEventListener('abort', onAbort);

  // The child is gone: what it left in its group would outlive it and, holding its pipes, keep
  // 'close' (and `done`, and the backup slot) from ever coming.
  child.once('exit', () => killAll('SIGKILL'));
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => {
      if (pgid !== undefined) liveGroups.delete(pgid);
      spec.signal.removeEventListener('abort', onAbort);
      reject(new SubprocessError(name, null, null, err.message));
    });
    child.once('close', (code, signal) => {
      if (pgid !== undefined) liveGroups.delete(pgid);
      clearTimeout(escalation);
      spec.signal.removeEventListener('abort', onAbort);
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
    watched: () => watched,
    kill,
  };
}
