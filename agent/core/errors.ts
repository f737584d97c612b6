/**
 * The error catalogue. Each error carries a stable `code` that logs and tests match on, and the
 * CLI maps classes to exit codes in one place (cli.ts).
 */

export type ErrorCode =
  | 'CONFIG'
  | 'PARSE'
  | 'CLONE'
  | 'CLONE_FATAL'
  | 'SUBPROCESS'
  | 'DATADIR'
  | 'PLAN'
  | 'STORE'
  | 'BACKUP';

export class AgentError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A setting is missing or invalid; the message names the variable and what it expects. */
export class ConfigError extends AgentError {
  constructor(message: string) {
    super('CONFIG', message);
  }
}

/** An info file or server answer did not have the expected shape. */
export class ParseError extends AgentError {
  constructor(
    message: string,
    readonly source: string,
  ) {
    super('PARSE', message);
  }
}

/**
 * A clone attempt failed. `retryable` says whether a fresh attempt from scratch may succeed
 * (refused connection, busy peer, broken stream) or not (wrong token, datadir problem).
 */
export class CloneError extends AgentError {
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(retryable ? 'CLONE' : 'CLONE_FATAL', message, options);
  }
}

/** The clone cannot be followed on this server in the requested mode; the message says why. */
export class PlanError extends AgentError {
  constructor(message: string) {
    super('PLAN', message);
  }
}

/** The datadir is in a state the agent will not touch on its own. */
export class DataDirError extends AgentError {
  constructor(message: string) {
    super('DATADIR', message);
  }
}

/**
 * The object store failed or refused; the message names the endpoint, bucket or setting and
 * never a secret. `retryable`: the store may answer later (unreachable, 5xx).
 */
export class StoreError extends AgentError {
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super('STORE', message, options);
  }
}

/** A backup, restore or drill could not be done or was refused; the message says why. */
export class BackupError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BACKUP', message, options);
  }
}

/** A child process exited badly; the stderr tail says why. */
export class SubprocessError extends AgentError {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stderrTail: string,
  ) {
    const how = signal ? `was killed by ${signal}` : `exited with status ${exitCode}`;
    const tail = stderrTail ? `: ${stderrTail}` : '';
    super('SUBPROCESS', `${command} ${how}${tail}`);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
