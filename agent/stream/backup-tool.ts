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
  /** zstd '' when none is installed: a receiver asking for zstd then gets the raw stream. */
  readonly tools: { readonly backup: string; readonly extraArgs: readonly string[]; readonly zstd: string };
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

/**
 * `zstd -1 -vv -c`: stdin compressed to stdout at level 1 (the peers' `zstd -1`), with frame
 * checksums (the CLI's default). -vv only for its summary line on stderr, the exact byte counts
 * (zstdSummary): the tool's stdout goes to zstd directly and no byte of it passes the agent.
 */
export function zstdCommand(tool: string): ToolCommand {
  return { command: tool, args: ['-1', '-vv', '-c'], env: {} };
}

/**
 * The bytes zstd read and wrote, from its -vv summary line: `(1000 B => 250 B, …)` in 1.5, `(  1000 =>
 *    250 bytes, …)` in 1.4 (its format pads to 6 places); null when no such line was printed.
 */
export function zstdSummary(stderr: string): { readonly inBytes: number; readonly outBytes: number } | null {
  const m = /\(\s*(\d+)(?: B)? =>\s*(\d+)(?: B| bytes), /.exec(stderr);
  return m ? { inBytes: Number(m[1]), outBytes: Number(m[2]) } : null;
}

/** `<tool> --prepare --target-dir=DIR`: makes a hot copy consistent. */
export function prepareCommand(tool: string, dir: string): ToolCommand {
  return { command: tool, args: ['--prepare', `--target-dir=${dir}`], env: {} };
}

/** `sync -f DIR`: gets everything written on the filesystem holding DIR to disk. */
export function syncCommand(dir: string): ToolCommand {
  return { command: 'sync', args: ['-f', dir], env: {} };
}
