/**
 * Keeps a stream's memory flat at disk speed. Every chunk a pipe or socket reads is a fresh
 * 64 KB buffer outside the JavaScript heap; V8 frees dead ones only when it collects the young
 * generation, which it does as its own (tiny) heap fills or once the buffers pass a limit of
 * tens of MB. At hundreds of MB/s that let 30–50 MB of dead chunks pile up per process.
 * A young-generation collection every few MB of stream keeps them to a few MB; it costs well
 * under a millisecond, since almost nothing in the young generation is alive.
 */
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A young-generation collection, or with `full` the whole heap. */
export type Collect = (full?: boolean) => void;

/** Bytes of stream between two collections: measured, 4 MiB kept the peak ~20 MB lower than 16 MiB did. */
export const COLLECT_EVERY_BYTES = 4 * 1024 * 1024;
/**
 * Growth of ArrayBuffer memory after a young-generation collection, over the lowest seen since
 * the last full one, that calls for a full collection: a chunk that waited long enough for a slow
 * consumer (the stream tool behind a busy disk) is promoted, and once dead there only a full
 * collection frees it (CI measured init decompressing a clone at 100.7 MB without one). A full
 * collection costs tens of ms, against one ms for a young one: taking one every 32 MiB whether
 * needed or not cost the sidecar about 2 CPU s per GB served.
 */
export const FULL_ABOVE_BYTES = 8 * 1024 * 1024;

/**
 * V8's own young-generation collection, or null where it cannot be reached. Enabling the flag
 * at run time exposes `gc` to contexts created afterwards, so no command-line flag is needed.
 *
 * Dead buffers are freed during the collection, not after it on a background thread (V8's
 * default): otherwise the read that follows it still counts them most of the time (22–33 of 40
 * here; 1 or 10 MB by turns in init over TLS), and those misreadings took a full collection
 * every 8 MiB of stream, which cost init over TLS 1.5 of its 3.3 CPU s per 0.38 GB.
 */
function minorCollector(): Collect | null {
  try {
    setFlagsFromString('--no-concurrent-array-buffer-sweeping');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (options: { type: 'minor' | 'major' }) => void;
    return (full) => gc({ type: full ? 'major' : 'minor' });
  } catch {
    return null;
  }
}

let cached: Collect | null | undefined;

/**
 * Returns the counter to call with each chunk's length: it runs a young-generation `collect`
 * once every `everyBytes` of stream, and a full one when `arrayBuffers` (the memory of Buffers)
 * stays FULL_ABOVE_BYTES above its lowest since the last full one.
 */
export function chunkCollector(
  everyBytes = COLLECT_EVERY_BYTES,
  collect: Collect | null = (cached ??= minorCollector()),
  arrayBuffers: () => number = () => process.memoryUsage().arrayBuffers,
): (bytes: number) => void {
  if (collect === null) return () => {};
  let since = 0;
  let lowest = Infinity;
  return (bytes) => {
    since += bytes;
    if (since < everyBytes) return;
    since = 0;
    collect(false);
    const now = arrayBuffers();
    lowest = Math.min(lowest, now);
    if (now - lowest > FULL_ABOVE_BYTES) {
      collect(true);
      lowest = arrayBuffers();
    }
  };
}

/**
 * Counts a stream's bytes into `meter` beside the pipe rather than in it (no stage added for
 * every chunk), collecting dead chunks as it goes. Adding the listener starts the flow.
 */
export function meterChunks(stream: Readable, meter: { bytes: number }): void {
  const collect = chunkCollector();
  stream.on('data', (chunk: Buffer) => {
    meter.bytes += chunk.length;
    collect(chunk.length);
  });
}

/** `rchar` of /proc/PID/io: bytes the process has read so far (a stream tool: its stdin). */
export function parseReadBytes(procIo: string): number | null {
  const m = /^rchar: (\d+)$/m.exec(procIo);
  return m ? Number(m[1]) : null;
}

/**
 * Bytes a child has read, for a stream handed to it whole (no chunk passes here to be counted);
 * null once it is gone.
 */
export async function childReadBytes(pid: number): Promise<number | null> {
  return readFile(`/proc/${pid}/io`, 'utf8').then(parseReadBytes, () => null);
}
