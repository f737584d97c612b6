/**
 * `npm run demo` installs only what the demo uses: Debian's MariaDB server and backup tools and
 * the npm packages, never Docker, Compose, debootstrap or ncat (the demo runs no container and no
 * tutorial pipe). test/rig/demo.sh runs for real on a copy of its scripts, with every command that
 * installs, starts or builds something (apt-get, docker, dockerd, docker-compose, debootstrap,
 * npm, npx) replaced by a stub that records its arguments; nothing is installed or started.
 */
import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from './rig.js';

const RECORDED = ['apt-get', 'docker', 'dockerd', 'docker-compose', 'debootstrap', 'npm', 'npx'];
/** What the packages the prerequisite scripts can install put on PATH: hidden on the "fresh machine". */
const INSTALLABLE = /^(mariadb|mysql|mbstream|ncat|docker|containerd|runc|debootstrap)/;
const SCRIPTS = ['test/rig/demo.sh', 'test/ensure-node.sh', 'test/ensure-prereqs.sh', 'test/ensure-docker.sh', 'test/docker-compose-plugin', 'image', 'package.json'];

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mysql-agent-demo-prereqs-'));
  for (const path of SCRIPTS) await cp(join(REPO, path), join(dir, 'repo', path), { recursive: true });
  await mkdir(join(dir, 'stubs'));
  for (const name of RECORDED) {
    await writeFile(join(dir, 'stubs', name), `#!/bin/bash\nprintf '%s\\n' "${name} $*" >> "$CALLS"\n`);
    await chmod(join(dir, 'stubs', name), 0o755);
  }
  // A machine without the MariaDB, ncat and Docker packages: /usr/bin and /bin minus what they install.
  await mkdir(join(dir, 'fresh'));
  for (const bin of ['/usr/bin', '/bin']) {
    for (const name of await readdir(bin)) {
      if (INSTALLABLE.test(name) || RECORDED.includes(name)) continue;
      await symlink(join(bin, name), join(dir, 'fresh', name)).catch(() => undefined);
    }
  }
  await rm(join(dir, 'fresh', 'node'), { force: true });
  await symlink(process.execPath, join(dir, 'fresh', 'node')); // Node 24, so ensure-node fetches nothing
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs demo.sh on the copy with `path` after the stubs; the commands it ran, in order, and its exit code. */
async function demo(path: string): Promise<{ code: number; calls: string[]; stderr: string }> {
  const calls = join(dir, `calls-${Math.random().toString(36).slice(2)}`);
  await writeFile(calls, '');
  const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile('/bin/bash', [join(dir, 'repo/test/rig/demo.sh'), '--once'], { env: { PATH: `${join(dir, 'stubs')}:${path}`, CALLS: calls, HOME: dir }, timeout: 60_000 }, (err, _out, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
    ),
  );
  return { code, calls: (await readFile(calls, 'utf8')).split('\n').filter(Boolean), stderr };
}

describe('npm run demo: the prerequisite step', () => {
  it('on this machine (MariaDB installed, Docker too) runs npm and the demo, and touches no Docker', async () => {
    const { code, calls, stderr } = await demo(`${dirname(process.execPath)}:${process.env.PATH}`);
    expect({ code, calls }, stderr).toEqual({ code: 0, calls: ['npm ci --no-audit --no-fund', 'npm run build', 'npx tsx test/rig/demo.ts --once'] });
  });

  it('on a fresh machine installs Debian\'s mariadb-server, mariadb-backup and zstd (init\'s decompressor) only: no ncat, docker.io, docker-compose or debootstrap', async () => {
    const { code, calls, stderr } = await demo(join(dir, 'fresh'));
    expect({ code, calls }, stderr).toEqual({
      code: 0,
      calls: [
        'apt-get -o DPkg::Lock::Timeout=300 update -q',
        'apt-get -o DPkg::Lock::Timeout=300 install -y -q mariadb-server mariadb-backup zstd',
        'npm ci --no-audit --no-fund',
        'npm run build',
        'npx tsx test/rig/demo.ts --once',
      ],
    });
  });
});
