/**
 * Command lines for the backup tool (xtrabackup or mariadb-backup) and its stream tool
 * (xbstream or mbstream). Pure builders: the password never appears here, it travels in the
 * child's environment (MYSQL_PWD), so it is not visible in `ps` or in error messages.
 */
import type { Config } from '../core/settings.js';

export interface ToolCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

function toolEnv(config: Config, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...base, MYSQL_PWD: config.mysql.password };
  return env;
}

/**
 * `<tool> [XTRABACKUP_ARGS] --backup --slave-info --stream=xbstream --host=H --port=P --user=U
 *  --datadir=D --target-dir=T`
 * XTRABACKUP_ARGS go first so that `--defaults-file`, which must lead, can be among them.
 */
export function backupCommand(config: Config, tmpDir: string, base: NodeJS.ProcessEnv = process.env): ToolCommand {
  return {
    command: config.tools.backup,
    args: [
      ...config.tools.extraArgs,
      '--backup',
      '--slave-info',
      '--stream=xbstream',
      `--host=${config.mysql.host}`,
      `--port=${config.mysql.port}`,
      `--user=${config.mysql.user}`,
      `--datadir=${config.dataDir}`,
      `--target-dir=${tmpDir}`,
    ],
    env: toolEnv(config, base),
  };
}

/** `<stream tool> -x -C DIR`: extracts a stream read from stdin into DIR. */
export function extractCommand(config: Config, dir: string, base: NodeJS.ProcessEnv = process.env): ToolCommand {
  return { command: config.tools.stream, args: ['-x', '-C', dir], env: { ...base } };
}

/** `<tool> --prepare --target-dir=DIR`: makes a hot copy consistent. */
export function prepareCommand(config: Config, dir: string, base: NodeJS.ProcessEnv = process.env): ToolCommand {
  return { command: config.tools.backup, args: ['--prepare', `--target-dir=${dir}`], env: { ...base } };
}
