/**
 * Command lines for the backup tool (xtrabackup or mariadb-backup) and its stream tool
 * (xbstream or mbstream). Pure builders: the password never appears here, it travels in the
 * child's environment (MYSQL_PWD), so it is not visible in `ps` or in error messages.
 */

export interface ToolCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

/** What the backup tool is run with: the tool, its extra arguments, and the server it copies. */
export interface BackupToolSettings {
  readonly tools: { readonly backup: string; readonly extraArgs: readonly string[] };
  readonly mysql: { readonly host: string; readonly port: number; readonly user: string; readonly password: string };
  readonly dataDir: string;
}

/**
 * `<tool> [XTRABACKUP_ARGS] --backup --slave-info --stream=xbstream --host=H --port=P --user=U
 *  --datadir=D --target-dir=T`
 * XTRABACKUP_ARGS go first so that `--defaults-file`, which must lead, can be among them.
 */
export function backupCommand(config: BackupToolSettings, tmpDir: string, base: NodeJS.ProcessEnv = process.env): ToolCommand {
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
    env: { ...base, MYSQL_PWD: config.mysql.password },
  };
}

/** `<stream tool> -x -C DIR`: extracts a stream read from stdin into DIR. */
export function extractCommand(tool: string, dir: string, base: NodeJS.ProcessEnv = process.env): ToolCommand {
  return { command: tool, args: ['-x', '-C', dir], env: { ...base } };
}

/** `<tool> --prepare --target-dir=DIR`: makes a hot copy consistent. */
export function prepareCommand(tool: string, dir: string, base: NodeJS.ProcessEnv = process.env): ToolCommand {
  return { command: tool, args: ['--prepare', `--target-dir=${dir}`], env: { ...base } };
}
