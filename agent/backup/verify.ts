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
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2';
import { BackupError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { chooseBackup, restoreInto } from '../init/restore.js';
import { type ThrowawayFiles, throwawayServerCommand, withThrowawayServer } from '../init/throwaway-server.js';
import type { Db } from '../mysql/db.js';
import { drillKey } from '../store/layout.js';
import { type DrillVerdict, type Manifest, formatJson } from '../store/manifest.js';
import { Store } from '../store/s3.js';
import { type ToolCommand, prepareCommand } from '../stream/backup-tool.js';
import { spawnOwned } from '../stream/child.js';
import type { VerifyConfig } from './settings.js';

/** The drill's throwaway server: the scratch directory holds its datadir (`data/`) and its files. */
export const drillServerCommand = (server: string, scratch: string, port: number, asRoot: boolean): ToolCommand =>
  throwawayServerCommand(server, drillFiles(scratch), port, asRoot);
const drillFiles = (scratch: string): ThrowawayFiles => ({ dataDir: join(scratch, 'data'), runDir: scratch, name: 'drill' });

/** The verdict of one `CHECK TABLE`'s rows: OK when its status says so and no row is an error. */
export function checkTableVerdict(rows: readonly Record<string, unknown>[]): { ok: boolean; message: string } {
  const errors = rows.filter((r) => String(r.Msg_type).toLowerCase() === 'error').map((r) => String(r.Msg_text));
  const status = rows.find((r) => String(r.Msg_type).toLowerCase() === 'status');
  const ok = errors.length === 0 && status !== undefined && String(status.Msg_text) === 'OK';
  return { ok, message: ok ? 'OK' : [...errors, status ? String(status.Msg_text) : 'no status row'].join('; ') };
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
  await restoreInto(store, manifest, config.tools, data, log, signal);
  log.info({ phase: 'drill', backup_id: manifest.id }, 'restored and SHA-256 checked; preparing');
  await spawnOwned({ ...prepareCommand(config.tools.backup, data), stdin: 'ignore', stdout: 'ignore', signal, killWith: 'SIGKILL', log }).done;
  const checked = await withThrowawayServer({ server: config.tools.server, files: drillFiles(scratch), what: "the drill's server", log, signal }, async (db, port) => {
    log.info({ phase: 'drill', port }, 'throwaway server answers on loopback');
    return checkTables(db, log);
  });
  return checked;
}

export async function runVerifyBackup(config: VerifyConfig, log: Logger, signal: AbortSignal): Promise<void> {
  const store = new Store(config.store);
  try {
    const manifest = await store.reachWith(signal, () => chooseBackup(store, config.backupId === null ? { kind: 'latest' } : { kind: 'id', id: config.backupId }, 'BACKUP_ID'));
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
