/**
 * A stand-in agent for child.test.ts: spawns an owned child whose group holds a `sleep`, waits
 * until the sleep's pid is in argv[2], then exits with the child still running (process.exit,
 * as an agent's error path does). The exit hook of stream/child.ts must kill that group.
 */
import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import { spawnOwned } from '../../../agent/stream/child.js';

const pidFile = process.argv[2]!;
spawnOwned({
  command: 'sh',
  args: ['-c', `sleep 1000 & echo $! > ${pidFile}; wait`],
  env: {},
  stdin: 'ignore',
  stdout: 'ignore',
  signal: new AbortController().signal,
  killWith: 'SIGKILL',
  log: pino({ level: 'silent' }),
});
const poll = setInterval(async () => {
  if ((await readFile(pidFile, 'utf8').catch(() => '')).endsWith('\n')) {
    clearInterval(poll);
    process.exit(0);
  }
}, 20);
