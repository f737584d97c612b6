// One archiving pass over one binary log in a process of its own, as the sidecar runs (dist/cli.js's
// --max-semi-space-size=1), sampling its memory every 20 ms: what the archive's reads and upload cost.
// argv: variant file [endpoint bucket] (variants: archive-memory.ts); env: the store's credentials. Prints one JSON line.
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';

const [variant, file, endpoint, bucket] = process.argv.slice(2);
const dist = (p) => import(pathToFileURL(new URL(`../../../dist/${p}`, import.meta.url).pathname).href);
const peak = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
const sample = () => {
  const m = process.memoryUsage();
  for (const k of Object.keys(peak)) peak[k] = Math.max(peak[k], m[k]);
};
const timer = setInterval(sample, 20);
const mb = (x) => Math.round((x / 2 ** 20) * 10) / 10;

const { summarizeBinlog } = await dist('mysql/binlog.js');
const store = variant === 'bare' ? null : new (await dist('store/s3.js')).Store({ bucket, prefix: 'mem/', region: 'us-east-1', endpoint, forcePathStyle: true });
const { chunkCollector } = await dist('stream/meter.js');
// What a container running only the archiver would load beside it: the driver, the log, the archiver, the metrics.
if (variant.startsWith('archiver-only')) await Promise.all(['mysql/db.js', 'core/log.js', 'sidecar/archive.js', 'sidecar/metrics.js'].map(dist));
sample();
const afterImport = process.memoryUsage().rss;
/** The file as the archiver reads it; with `-collected` every chunk counted into a young-generation collector. */
const read = () => {
  const stream = createReadStream(file);
  if (!variant.endsWith('-collected')) return stream;
  const collect = chunkCollector();
  return Readable.from(async function* () {
    for await (const chunk of stream) {
      collect(chunk.length);
      yield chunk;
    }
  }());
};
const started = Date.now();
if (variant !== 'bare' && variant !== 'sdk') {
  const summary = await summarizeBinlog(basename(file), read());
  const key = `mem/${variant}-${summary.sha256.slice(0, 8)}`;
  // upload-stream: the file streamed through the SDK's uploader (the archive before); upload-file: parts read from the file (now).
  if (variant.startsWith('upload-stream')) await store.upload(key, read(), new AbortController().signal);
  else if (variant.startsWith('upload-file') || variant.startsWith('archiver-only')) await store.uploadFile(key, file, new AbortController().signal);
}
const seconds = (Date.now() - started) / 1000;
sample();
clearInterval(timer);
const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(await readFile('/proc/self/status', 'utf8'))[1]) / 1024;
store?.destroy();
console.log(JSON.stringify({ variant, seconds, rss_after_import_mb: mb(afterImport), vmhwm_mb: Math.round(hwm * 10) / 10, ...Object.fromEntries(Object.entries(peak).map(([k, v]) => [`peak_${k}_mb`, mb(v)])) }));
