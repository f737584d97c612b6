// A bounded flood for status-load.test.ts, in its own process so that the prober's timings are
// the server's and not this client's event loop: `node flood.mjs HOST PORT CONCURRENCY MS`
// keeps CONCURRENCY requests in flight (every tenth a /metrics scrape, the rest /status) for MS
// milliseconds on keep-alive connections, then prints {"answered":N,"failed":N} and exits.
import { Agent, request } from 'node:http';

const [host, port, concurrency, ms] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const deadline = performance.now() + Number(ms);
let answered = 0;
let failed = 0;

function get(path) {
  return new Promise((resolve) => {
    const req = request({ host, port: Number(port), path, agent, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function worker(n) {
  while (performance.now() < deadline) {
    if (await get(n % 10 === 0 ? '/metrics' : '/status')) answered++;
    else failed++;
  }
}

await Promise.all(Array.from({ length: Number(concurrency) }, (_, n) => worker(n)));
agent.destroy();
process.stdout.write(`${JSON.stringify({ answered, failed })}\n`);
