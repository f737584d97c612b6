/**
 * One writer at a time per cluster prefix: the run that writes a backup (and deletes old ones)
 * holds `<prefix>mysql-agent/lock.json`, created with `If-None-Match: *` so that of two runs
 * starting together exactly one gets it; the other is refused, naming the holder. The holder
 * renews it every LOCK_RENEW_MS; a lock not renewed for LOCK_STALE_MS belongs to a run that was
 * killed, and the next run deletes it and takes its place (and cleans up what that run left).
 *
 * The takeover cannot be one conditional request: Ceph RGW answers 412 to `If-Match` even with
 * the object's own ETag (test/store/store-edge.test.ts), so it is a delete, then a create with
 * `If-None-Match: *`. Two runs that both found the lock stale can then both create it in turn
 * (the second deleting the first's); each therefore reads the lock back after LOCK_SETTLE_MS and
 * goes on only if it is still its own, so the earlier one steps back before it touches anything.
 *
 * "Still its own" is a HEAD compared with the ETag of the run's last write, not a GET of the body:
 * Ceph RGW sends a small object's body in a segment of its own after the headers, and with Nagle
 * on its side and delayed ACKs on ours each such GET took ~45 ms against ~3 ms for a HEAD
 * (measured on the test store; a backup read the lock at its end, inside the measured time).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { BackupError } from '../core/errors.js';
import type { BackupId } from './layout.js';
import { lockKey } from './layout.js';
import type { Store, Written } from './s3.js';

export const LOCK_RENEW_MS = 30_000;
export const LOCK_STALE_MS = 180_000;
/** How long a run that took over a stale lock waits before it checks the lock is still its own. */
export const LOCK_SETTLE_MS = 2_000;

export interface LockBody {
  readonly id: BackupId;
  readonly host: string;
  readonly started_at: string;
  readonly renewed_at: string;
}

export type LockState =
  | { readonly kind: 'held'; readonly body: LockBody | null }
  | { readonly kind: 'stale'; readonly body: LockBody | null };

/** Whether an existing lock is alive: renewed within `staleMs`; one that cannot be read is stale. */
export function judgeLock(text: string | null, now: number, staleMs = LOCK_STALE_MS): LockState {
  let body: LockBody | null = null;
  try {
    body = text === null ? null : (JSON.parse(text) as LockBody);
  } catch {
    body = null;
  }
  const renewed = body ? Date.parse(body.renewed_at) : Number.NaN;
  return { kind: Number.isFinite(renewed) && now - renewed < staleMs ? 'held' : 'stale', body };
}

export interface HeldLock {
  /** Rewrites renewed_at; throws when another run took the lock meanwhile. */
  renew(): Promise<void>;
  release(): Promise<void>;
  /** The lock of a killed run that this one replaced, if any. */
  readonly replaced: LockBody | null;
}

/** Takes the lock or throws BackupError naming the run that holds it. */
export async function acquireLock(store: Store, id: BackupId, host: string, now: () => number = Date.now, settleMs = LOCK_SETTLE_MS): Promise<HeldLock> {
  const key = lockKey(store.config.prefix);
  let written: Written | null = null;
  // A store that names no version (no ETag) is asked for the body.
  const mine = async () =>
    written?.etag ? (await store.etag(key)) === written.etag : judgeLock(await store.getText(key), now()).body?.id === id;
  const started = new Date(now()).toISOString();
  const body = (): string => `${JSON.stringify({ id, host, started_at: started, renewed_at: new Date(now()).toISOString() } satisfies LockBody)}\n`;
  let replaced: LockBody | null = null;
  written = await store.putText(key, body(), { onlyIfAbsent: true });
  if (written === null) {
    const state = judgeLock(await store.getText(key), now());
    if (state.kind === 'held') {
      const who = state.body ? `backup ${state.body.id} from ${state.body.host}, started ${state.body.started_at}` : 'another run';
      throw new BackupError(`another backup run holds the store's lock (${who}): refusing to start a second one; this run wrote nothing`);
    }
    replaced = state.body;
    await store.delete(key);
    written = await store.putText(key, body(), { onlyIfAbsent: true });
    if (written !== null) await delay(settleMs);
    if (written === null || !(await mine())) {
      throw new BackupError('another backup run took over the stale lock at the same moment: refusing to start a second one; this run wrote nothing');
    }
  }
  return {
    replaced,
    renew: async () => {
      if (!(await mine())) throw new BackupError(`lost the store's lock to another run (this run was stalled over ${LOCK_STALE_MS / 1000} s): stopping`);
      written = await store.putText(key, body());
    },
    release: async () => {
      if (await mine()) await store.delete(key);
    },
  };
}
