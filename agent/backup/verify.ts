/**
 * `mysql-agent verify-backup`: the restore drill. It proves a backup restores, not only that
 * its bytes are intact:
 *
 * 1. restore into a scratch directory under DRILL_DIR, streamed and hashed (init's restoreInto:
 *    a SHA-256 or size that differs from the manifest fails here, before prepare);
 * 2. `--prepare`;
 * 3. a throwaway server on it: its own socket in the scratch directory, bound to 127.0.0.1 on a
 *    free port, `--skip-grant-tables` (the drill does not know the backup's accounts, and nothing
 *    but this process can reach it), no binlog, no replication;
 * 4. `CHECK TABLE` and `SELECT COUNT(*)` on every base table;
 * 5. the server stopped, the scratch directory removed, whatever happened;
 * 6. the verdict written beside the manifest (drill.json). Exit 0 only on a pass.
 */
import { readFile, mkdtemp, mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import mysql from 'mysql2';
import { BackupError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { chooseBackup, restoreInto } from '../init/restore.js';
import { type Db, createDb, waitForServer } from '../mysql/db.js';
import { drillKey } from '../store/layout.js';
import { type DrillVerdict, type Manifest, formatJson } from '../store/manifest.js';
import { Store } from '../store/s3.js';
import { type ToolCommand, prepareCommand } from '../stream/backup-tool.js';
import { spawnOwned } from '../stream/child.js';
import type { VerifyConfig } from './settings.js';

const SERVER_START_TIMEOUT_MS = 120_000;

/**
 * `<server> --no-defaults --datadir=D --socket=S --bind-address=127.0.0.1 --port=P
 *  --skip-grant-tables --skip-slave-start --skip-log-bin ...`: the throwaway server of a drill.
 */
export function drillServerCommand(server: string, scratch: string, port: number, asRoot: boolean): ToolCommand {
  return {
    command: server,
    args: [
      '--no-defaults',
      `--datadir=${join(scratch, 'data')}`,
      `--socket=${join(scratch, 'drill.sock')}`,
      `--pid-file=${join(scratch, 'drill.pid')}`,
      `--log-error=${join(scratch, 'drill.err')}`,
      `--tmpdir=${join(scratch, 'tmp')}`,
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

/** The verdict of one `CHECK TABLE`'s rows: OK when its status says so and no row is an error. */
export function checkTableVerdict(rows: readonly Record<string, unknown>[]): { ok: boolean; message: string } {
  const errors = rows.filter((r) => String(r.Msg_type).toLowerCase() === 'error').map((r) => String(r.Msg_text));
  const status = rows.find((r) => String(r.Msg_type).toLowerCase() === 'status');
  const ok = errors.length === 0 && status !== undefined && String(status.Msg_text) === 'OK';
  return { ok, message: ok ? 'OK' : [...errors, status ? String(status.Msg_text) : 'no status row'].join('; ') };
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

interface TablesChecked {
  readonly tables: Record<string, number>;
  readonly failures: string[];
}

async function checkTables(db: Db, log: Logger): Promise<TablesChecked> {
  const list = await db.query(
    "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema', 'sys') ORDER BY 1, 2",
  );
  const tables: Record<string, number> = {};
  const failures: string[] = [];
  for (const { s, t } of list) {
    const name = `${String(s)}.${String(t)}`;
    const id = `${mysql.escapeId(String(s))}.${mysql.escapeId(String(t))}`;
    const verdict = checkTableVerdict(await db.query(`CHECK TABLE ${id}`));
    if (!verdict.ok) failures.push(`CHECK TABLE ${name}: ${verdict.message}`);
    const [row] = await db.query(`SELECT COUNT(*) AS n FROM ${id}`);
    tables[name] = Number(row?.n ?? 0);
  }
  log.info({ phase: 'drill', tables: list.length, failures: failures.length }, 'tables checked');
  return { tables, failures };
}

/** Restores, prepares, starts, checks; the failure as text, or null. Always stops the server and removes `scratch`. */
async function drill(config: VerifyConfig, store: Store, manifest: Manifest, scratch: string, log: Logger, signal: AbortSignal): Promise<TablesChecked> {
  const data = join(scratch, 'data');
  await mkdir(data);
  await mkdir(join(scratch, 'tmp'));
  await restoreInto(store, manifest, config.tools.stream, data, log, signal);
  log.info({ phase: 'drill', backup_id: manifest.id }, 'restored and SHA-256 checked; preparing');
  await spawnOwned({ ...prepareCommand(config.tools.backup, data), stdin: 'ignore', stdout: 'ignore', signal, killWith: 'SIGKILL', log }).done;
  const port = await freePort();
  const stop = new AbortController();
  const server = spawnOwned({
    ...drillServerCommand(config.tools.server, scratch, port, process.getuid?.() === 0),
    stdin: 'ignore',
    stdout: 'ignore',
    signal: AbortSignal.any([signal, stop.signal]),
    killWith: 'SIGTERM',
    log,
  });
  const db = createDb({ host: '127.0.0.1', port, socketPath: join(scratch, 'drill.sock'), user: 'root', password: '' });
  try {
    const exited = server.done.then(
      async () => {
        throw new BackupError(`the drill's server exited: ${await errorLogTail(scratch)}`);
      },
      async (err: unknown) => {
        throw new BackupError(`the drill's server failed: ${errorMessage(err)}; ${await errorLogTail(scratch)}`);
      },
    );
    const waiting = AbortSignal.any([signal, AbortSignal.timeout(SERVER_START_TIMEOUT_MS)]);
    await Promise.race([waitForServer(db, log, waiting), exited]);
    log.info({ phase: 'drill', port }, 'throwaway server answers on loopback');
    const checked = await Promise.race([checkTables(db, log), exited]);
    exited.catch(() => {});
    return checked;
  } finally {
    await db.end().catch(() => {});
    stop.abort();
    await server.done.catch(() => {});
  }
}

async function errorLogTail(scratch: string): Promise<string> {
  const text = await readFile(join(scratch, 'drill.err'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).slice(-3).join(' | ') || 'no error log';
}

export async function runVerifyBackup(config: VerifyConfig, log: Logger, signal: AbortSignal): Promise<void> {
  const store = new Store(config.store);
  try {
    await store.reach(signal);
    const manifest = await chooseBackup(store, config.backupId === null ? { kind: 'latest' } : { kind: 'id', id: config.backupId }, 'BACKUP_ID');
    const dlog = log.child({ backup_id: manifest.id });
    const started = Date.now();
    const scratch = await mkdtemp(join(config.drillDir, 'mysql-agent-drill-'));
    dlog.info({ phase: 'drill', scratch }, `restore drill of backup ${manifest.id}`);
    let checked: TablesChecked = { tables: {}, failures: [] };
    let failure: string | null = null;
    try {
      checked = await drill(config, store, manifest, scratch, dlog, signal);
      if (checked.failures.length > 0) failure = checked.failures.join('; ');
    } catch (err) {
      if (signal.aborted) throw err;
      failure = errorMessage(err);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    const verdict: DrillVerdict = {
      id: manifest.id,
      verified_at: new Date().toISOString(),
      ok: failure === null,
      tables_checked: Object.keys(checked.tables).length,
      rows: Object.values(checked.tables).reduce((a, b) => a + b, 0),
      duration_ms: Date.now() - started,
      failure,
      tables: checked.tables,
    };
    await store.putText(drillKey(store.config.prefix, manifest.id), formatJson(verdict));
    const fields = { phase: 'done', ok: verdict.ok, tables_checked: verdict.tables_checked, rows: verdict.rows, duration_ms: verdict.duration_ms };
    if (failure !== null) throw new BackupError(`restore drill of backup ${manifest.id} failed: ${failure}`);
    dlog.info(fields, `restore drill of backup ${manifest.id} passed`);
  } finally {
    store.destroy();
  }
}
