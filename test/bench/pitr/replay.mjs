// The agent's way: mariadb-binlog's stdout handed to mariadb as its stdin (the pipe's fd is
// duplicated into the child: no byte passes through JavaScript).
import { spawn } from 'node:child_process';
const [sock, ...files] = process.argv.slice(2);
const t0 = process.hrtime.bigint();
const reader = spawn('mariadb-binlog', files, { stdio: ['ignore', 'pipe', 'inherit'] });
const writer = spawn('mariadb', ['-S', sock, '-uroot'], { stdio: [reader.stdout, 'inherit', 'inherit'] });
reader.stdout.destroy(); // the parent's copy: closing it keeps the parent off the data path
const codes = await Promise.all([reader, writer].map((c) => new Promise((r) => c.on('exit', (code) => r(code)))));
console.log(JSON.stringify({ codes, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
