#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576:glibc.malloc.arena_max=2 node --max-semi-space-size=1 --no-turbofan
// A young generation of 1 MB (V8's default grows it to 16 MB per semi-space) keeps each agent
// process about 10 MB further under its 100 MB: what dies young here is per-chunk garbage and
// per-request objects, so the extra scavenges cost nothing measurable (README, Performance).
// glibc's malloc with a fixed 1 MiB mmap threshold and two arenas: by default it raises the
// threshold after each large free, so 8 MiB upload parts and 256 KiB stream buffers come from
// heaps that are never trimmed, and the archiving sidecar's RSS ratcheted up file by file
// (132.6 → 119.6 MB peak under sysbench; README, Point-in-time recovery). Children do not inherit it.
// No TurboFan: the bytes are moved by children and by Node's native code (zlib, crypto, sockets),
// and V8's top tier only touched ~5 MB more of node's executable and its own zones in every agent
// process (sidecar 91.7 → 85.3 MB, backup 106.4 → 99.1 MB at peak); Maglev still optimises.
/**
 * Entry point: parses argv and the environment once against the command's own settings, builds
 * the root logger, dispatches to `init`, `sidecar`, `plan`, `status`, `backup`, `backups`,
 * `verify-backup` or `restore-plan`, and alone decides exit codes: 0 done, 1 failed, 2 bad configuration (or, for plan, a clone that
 * cannot be used), 143 stopped by SIGTERM before finishing (init); status: 0 every pod healthy, 1
 * one is not.
 */
import { hostname } from 'node:os';
import { COMMANDS, type Config } from './commands.js';
import { AgentError, ConfigError, errorMessage } from './core/errors.js';
import { type Logger, createLogger } from './core/log.js';
import { HelpRequested, loadCommand } from './core/settings.js';

/** How long the sidecar may take to stop after SIGTERM before it exits anyway. */
const SHUTDOWN_DEADLINE_MS = 10_000;

function configure(): Config {
  try {
    return loadCommand(COMMANDS, { argv: process.argv.slice(2), env: process.env, hostname: hostname() });
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(`${err.text}\n`);
      process.exit(0);
    }
    if (err instanceof ConfigError) {
      for (const line of err.message.split('\n')) process.stderr.write(`mysql-agent: ${line}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** Each command loads only its own modules: init never pays for fastify and mysql2 in memory. */
async function run(config: Config, log: Logger, signal: AbortSignal): Promise<void> {
  switch (config.command) {
    case 'init':
      return (await import('./init/init.js')).runInit(config, log, signal);
    case 'sidecar':
      return (await import('./sidecar/sidecar.js')).runSidecar(config, log, signal);
    case 'plan':
      return (await import('./mysql/plan.js')).runPlan(config, process.stdout, process.stderr);
    case 'status':
      process.exitCode = await (await import('./status/status.js')).runStatus(config, process.stdout, signal);
      return;
    case 'backup':
      return (await import('./backup/backup.js')).runBackup(config, log, signal, process.stdout);
    case 'backups':
      return (await import('./backup/list.js')).runBackups(config, log, signal, process.stdout);
    case 'verify-backup':
      return (await import('./backup/verify.js')).runVerifyBackup(config, log, signal);
    case 'restore-plan':
      return (await import('./init/pitr.js')).runRestorePlan(config, signal, process.stdout);
  }
}

async function main(): Promise<void> {
  const config = configure();
  // plan, status and the store commands print their answer on stdout (a plan, a table, an id): logs go to stderr.
  const printsResult = ['plan', 'status', 'backup', 'backups', 'restore-plan'].includes(config.command);
  const log = createLogger({
    level: config.logLevel,
    bindings: { pod: config.podName, ...('ordinal' in config ? { ordinal: config.ordinal, role: config.role } : {}), command: config.command },
    fd: printsResult ? 2 : 1,
  });
  // Node prints process warnings (a dependency's deprecation, say) as plain text on stderr;
  // the logs must stay JSON, one event per line.
  process.removeAllListeners('warning');
  process.on('warning', (w: Error & { code?: string }) => log.warn({ warning: w.name, warning_code: w.code, reason: w.message }, 'process warning'));
  const controller = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      log.info({ phase: 'shutdown', signal: sig }, 'signal received');
      controller.abort(new Error(`stopped by ${sig}`));
      setTimeout(() => {
        log.error({ phase: 'shutdown' }, `did not stop within ${SHUTDOWN_DEADLINE_MS / 1000} s, exiting`);
        process.exit(1);
      }, SHUTDOWN_DEADLINE_MS).unref();
    });
  }
  try {
    await run(config, log, controller.signal);
  } catch (err) {
    const code = err instanceof AgentError ? err.code : 'UNEXPECTED';
    if (config.command === 'plan' && (code === 'PLAN' || code === 'PARSE')) {
      process.stderr.write(`mysql-agent plan: ${errorMessage(err)}\n`);
      process.exitCode = 2;
      return;
    }
    log.error({ phase: 'exit', code, err: errorMessage(err) }, `${config.command} failed: ${errorMessage(err)}`);
    process.exitCode = controller.signal.aborted ? 143 : code === 'CONFIG' ? 2 : 1;
    return;
  }
  if (config.command === 'init' && controller.signal.aborted) process.exitCode = 143;
}

await main();
