/**
 * `mysql-agent backups`: the complete backups (those with a manifest), newest first, with the
 * last drill's verdict. `describeBackups` reads the store; `formatTable` is pure.
 */
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { type BackupId, drillKey, manifestKey } from '../store/layout.js';
import { type DrillVerdict, type Manifest, parseDrillVerdict, parseManifest } from '../store/manifest.js';
import { Store } from '../store/s3.js';
import type { BackupsConfig } from './settings.js';

export interface ListedBackup {
  readonly manifest: Manifest;
  readonly drill: DrillVerdict | null;
}

/** Every complete backup with its drill verdict; a manifest that does not parse is logged and left out. */
export async function describeBackups(store: Store, log: Logger): Promise<ListedBackup[]> {
  const listed: ListedBackup[] = [];
  for (const b of await store.list()) {
    if (!b.hasManifest) continue;
    const key = manifestKey(store.config.prefix, b.id);
    try {
      const manifest = parseManifest((await store.getText(key)) ?? '', key);
      const drillText = b.hasDrill ? await store.getText(drillKey(store.config.prefix, b.id)) : null;
      listed.push({ manifest, drill: drillText === null ? null : parseDrillVerdict(drillText, drillKey(store.config.prefix, b.id)) });
    } catch (err) {
      log.warn({ phase: 'list', backup_id: b.id, err: errorMessage(err) }, 'unreadable manifest: not listed');
    }
  }
  return listed;
}

/** The ids of the complete backups, newest first. */
export const ids = (backups: readonly ListedBackup[]): BackupId[] => backups.map((b) => b.manifest.id);

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/** A table for a terminal: one line per backup. */
export function formatTable(backups: readonly ListedBackup[]): string {
  if (backups.length === 0) return 'no complete backups\n';
  const rows = backups.map(({ manifest: m, drill }) => [
    m.id,
    m.finished_at.replace(/\.\d+Z$/, 'Z'),
    m.source.ordinal === null ? m.source.host : `mysql-${m.source.ordinal} (${m.source.host})`,
    `${m.server.flavor ?? '?'} ${m.server.version ?? '?'}`,
    mb(m.data.raw_bytes),
    mb(m.data.stored_bytes),
    m.data.sha256.slice(0, 12),
    m.coordinates.binlog_file === null ? '-' : `${m.coordinates.binlog_file}:${m.coordinates.binlog_pos}`,
    m.coordinates.gtid ?? '-',
    drill === null ? 'never' : `${drill.ok ? 'ok' : 'FAILED'} ${drill.verified_at.replace(/\.\d+Z$/, 'Z')}`,
  ]);
  const header = ['ID', 'FINISHED', 'SOURCE', 'SERVER', 'RAW', 'STORED', 'SHA-256', 'BINLOG', 'GTID', 'DRILL'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export async function runBackups(config: BackupsConfig, log: Logger, signal: AbortSignal, out: NodeJS.WritableStream): Promise<void> {
  const store = new Store(config.store);
  try {
    const backups = await store.reachWith(signal, () => describeBackups(store, log));
    out.write(config.json ? `${JSON.stringify(backups.map((b) => ({ ...b.manifest, drill: b.drill })), null, 2)}\n` : formatTable(backups));
  } finally {
    store.destroy();
  }
}
