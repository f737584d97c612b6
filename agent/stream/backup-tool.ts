/**
 * Command lines for the backup tool (xtrabackup or mariadb-backup), its stream tool (xbstream
 * or mbstream) and `sync`. Pure builders: the password never appears on a command line, it
 * travels in the backup tool's environment (MYSQL_PWD), so it is not visible in `ps` or in error
 * messages; every other child gets no variable of its own (child.ts adds only PATH and the like).
 */

export interface ToolCommand {
  readonly command: string;
  readonly args: readonly string[];
  /** The variables this child needs beyond the few every child inherits (child.ts). */
  readonly env: Readonly<Record<string, string>>;
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
export function backupCommand(config: BackupToolSettings, tmpDir: string): ToolCommand {
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
    env: { MYSQL_PWD: config.mysql.password },
  };
}

/** `<stream tool> -x -C DIR`: extracts a stream read from stdin into DIR. */
export function extractCommand(tool: string, dir: string): ToolCommand {
  return { command: tool, args: ['-x', '-C', dir], env: {} };
}

/** `zstd -d`: a zstd stream on stdin, decompressed to stdout; it fails on a frame whose checksum does not match. */
export function unzstdCommand(tool: string): ToolCommand {
  return { command: tool, args: ['-d', '-q', '-c'], env: {} };
}

/** `<tool> --prepare --target-dir=DIR`: makes a hot copy consistent. */
export function prepareCommand(tool: string, dir: string): ToolCommand {
  return { command: tool, args: ['--prepare', `--target-dir=${dir}`], env: {} };
}

/** `sync -f DIR`: gets everything written on the filesystem holding DIR to disk. */
export function syncCommand(dir: string): ToolCommand {
  return { command: 'sync', args: ['-f', dir], env: {} };
}
