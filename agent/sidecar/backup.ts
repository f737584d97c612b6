/**
 * Serving backups: one at a time, the backup tool's stdout streamed as is, its verdict kept
 * for the status trailer, and the tool SIGKILLed (it ignores SIGTERM) when the client goes
 * away or the agent shuts down.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { type BackupToolSettings, backupCommand, zstdCommand, zstdSummary } from '../stream/backup-tool.js';
import { spawnOwned } from '../stream/child.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Compression } from '../stream/compression.js';
import { childReadBytes, meterChunks } from '../stream/meter.js';
import { type Progress, estimateBackupBytes, progress } from '../stream/sizes.js';

export interface BackupRecord {
  readonly client: string;
  readonly started_at: string;
  readonly finished_at: string | null;
  readonly bytes: number;
  /** What the backup announced it would weigh; null when it could not be measured. */
  readonly estimated_bytes: number | null;
  /** null while running; else null on success or the reason it failed. */
  readonly failure: string | null;
}

/** The running backup in /status: its record and, against its estimate, percent, rate and ETA. */
export type RunningRecord = BackupRecord & Progress;

export interface RunningBackup {
  readonly stream: Readable;
  /** What `stream` is: zstd only when it was asked for and zstd is installed. */
  readonly encoding: Compression;
  /** The datadir's size as the backup will roughly copy it; null if it could not be measured. */
  readonly estimatedBytes: number | null;
  /** Resolves when the tool has exited: null on success, else why it failed. Never rejects. */
  readonly finished: Promise<string | null>;
  /** Bytes of the tool's stream so far (before compression). */
  bytes(): number;
  /** Its record's started_at: names it in /status. */
  readonly startedAt: string;
  abort(reason: string): void;
}

/** How often a compressed backup's raw bytes are read from zstd's /proc/PID/io. */
const READ_POLL_MS = 1000;

export class BackupService {
  private running: { record: BackupRecord; meter: { bytes: number }; startedMs: number } | null = null;
  private lastRecord: BackupRecord | null = null;

  constructor(
    private readonly config: BackupToolSettings,
    private readonly log: Logger,
    private readonly shutdown: AbortSignal,
  ) {}

  get inProgress(): RunningRecord | null {
    if (!this.running) return null;
    const { record, meter, startedMs } = this.running;
    return { ...record, ...progress(meter.bytes, record.estimated_bytes, Date.now() - startedMs) };
  }

  get last(): BackupRecord | null {
    return this.lastRecord;
  }

  /** What a backup of the datadir will roughly weigh; null (logged) when it cannot be measured. */
  estimate(log: Logger = this.log): Promise<number | null> {
    return estimateBackupBytes(this.config.dataDir).catch((err: unknown) => {
      log.warn({ phase: 'backup', err: errorMessage(err) }, 'could not estimate the backup size');
      return null;
    });
  }

  /**
   * Starts a backup for `client`, or returns 'busy' when one is running: callers are refused, not
   * queued. The datadir is measured before the tool is spawned, so that the caller pipes its
   * output in the same turn: Node drains the unread stdout of a child that exits, and a tool that
   * finished while the reply waited for the estimate lost its bytes (the client got an empty body
   * with `Success`). With `encoding` zstd (and zstd installed) the tool's stdout is zstd's stdin,
   * child to child: the sidecar relays only the compressed bytes.
   */
  async start(client: string, encoding: Compression = 'none'): Promise<RunningBackup | 'busy'> {
    if (this.running || this.shutdown.aborted) return 'busy';
    let record: BackupRecord = { client, started_at: new Date().toISOString(), finished_at: null, bytes: 0, estimated_bytes: null, failure: null };
    const meter = { bytes: 0 };
    const running = { record, meter, startedMs: Date.now() };
    this.running = running;
    const controller = new AbortController();
    const onShutdown = () => controller.abort('agent shutting down');
    this.shutdown.addEventListener('abort', onShutdown, { once: true });
    const log = this.log.child({ phase: 'backup', client });
    const started = Date.now();
    const estimatedBytes = await this.estimate(log);
    record = { ...record, estimated_bytes: estimatedBytes };
    running.record = record;
    let tmp: string;
    try {
      tmp = mkdtempSync(join(tmpdir(), 'mysql-agent-backup-'));
    } catch (err) {
      // Nothing runs: free the slot for the next request.
      this.shutdown.removeEventListener('abort', onShutdown);
      this.running = null;
      throw err;
    }
    const child = spawnOwned({
      ...backupCommand(this.config, tmp),
      stdin: 'ignore',
      stdout: 'pipe',
      signal: controller.signal,
      killWith: 'SIGKILL',
      log,
    });
    const served: Compression = encoding === 'zstd' && this.config.tools.zstd !== '' ? 'zstd' : 'none';
    const zstd =
      served === 'zstd'
        ? spawnOwned({ ...zstdCommand(this.config.tools.zstd), stdin: child.stdout!, stdout: 'pipe', signal: controller.signal, killWith: 'SIGKILL', log, reportOnStderr: true })
        : null;
    // Our copy of the pipe closed: zstd alone reads it, and the tool's end of it sees zstd's.
    if (zstd) child.stdout!.destroy();
    const stream = zstd?.stdout ?? child.stdout!;
    log.info({ pid: child.pid, estimated_bytes: estimatedBytes, encoding: served }, 'backup started');
    // The stream is the reply itself; the tool's bytes are counted beside it, or, when they go to
    // zstd unseen, read from zstd's counter of its reads (exact from its summary at the end).
    const wire = zstd ? { bytes: 0 } : meter;
    meterChunks(stream, wire);
    const reads = zstd ? setInterval(() => void childReadBytes(zstd.pid).then((n) => n !== null && (meter.bytes = n)), READ_POLL_MS).unref() : undefined;
    // A 'data' listener starts the flow: hold it until the reply pipes the stream (pipe resumes).
    stream.pause();

    // The tool's failure is the reason; zstd's only when the tool did its part.
    const exited = zstd
      ? Promise.allSettled([child.done, zstd.done]).then(([tool, z]) => {
          clearInterval(reads);
          meter.bytes = zstdSummary(zstd.stderrTail())?.inBytes ?? meter.bytes;
          const failed = [tool, z].find((r) => r.status === 'rejected');
          if (failed) throw failed.reason;
        })
      : child.done;
    const finished = exited
      .then(
        () => (controller.signal.aborted ? String(controller.signal.reason) : null),
        (err: unknown) => (controller.signal.aborted ? `${controller.signal.reason} (${errorMessage(err)})` : errorMessage(err)),
      )
      .then(async (failure) => {
        await rm(tmp, { recursive: true, force: true });
        this.shutdown.removeEventListener('abort', onShutdown);
        this.lastRecord = { ...record, finished_at: new Date().toISOString(), bytes: meter.bytes, failure };
        this.running = null;
        const fields = { bytes: meter.bytes, duration_ms: Date.now() - started, ...(zstd ? { wire_bytes: wire.bytes } : {}) };
        if (failure === null) log.info(fields, 'backup served');
        else log.error({ ...fields, err: failure }, 'backup failed');
        return failure;
      });

    return { stream, encoding: served, estimatedBytes, finished, bytes: () => meter.bytes, startedAt: record.started_at, abort: (reason) => controller.abort(reason) };
  }
}
