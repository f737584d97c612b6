/**
 * Writing back while a stream is extracted into the staging directory: `sync -f` on its
 * filesystem every WRITEBACK_EVERY_MS until the extraction ends, so that the flush before the
 * move, which must wait for every byte, finds little left. mbstream does not fsync, and the
 * kernel starts writing back on its own only past dirty_background_ratio (2.4 GB of a 24 GB
 * node), so the whole stream waited in the page cache for that flush: 170–200 ms after a 0.28 GB
 * extraction here, 9–31 ms with this beside it (README, Object storage).
 */
import type { Logger } from '../core/log.js';
import { syncCommand } from '../stream/backup-tool.js';
import { spawnOwned } from '../stream/child.js';

export const WRITEBACK_EVERY_MS = 250;

/**
 * Runs `flush` `everyMs` after each run of it ended, until the returned stop, which waits for a
 * run in progress. A failed run is let go: the flush before the move reports what matters.
 */
export function repeatUntilStopped(flush: () => Promise<unknown>, everyMs: number): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const schedule = () => {
    timer = setTimeout(() => {
      running = flush().then(
        () => undefined,
        () => undefined,
      );
      void running.then(() => {
        if (!stopped) schedule();
      });
    }, everyMs);
  };
  schedule();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}

/** `sync -f dir` repeated while the caller extracts into `dir`; call the result when it is done. */
export function writeBackAlong(dir: string, log: Logger, signal: AbortSignal): () => Promise<void> {
  return repeatUntilStopped(() => spawnOwned({ ...syncCommand(dir), stdin: 'ignore', stdout: 'ignore', signal, killWith: 'SIGTERM', log }).done, WRITEBACK_EVERY_MS);
}
