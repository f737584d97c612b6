/**
 * Senders and receivers of different releases clone from each other: the release before the
 * bare-xbstream upgrade (built here from its commit) as sender or receiver, this one as the other
 * side, and this one on both sides (upgraded, socket handed to mbstream). Each clone is checked
 * the way every clone is (verdict, closing files), then replicates. `backup` from the old sender
 * (raw: compressed by the backup itself) stores a backup the drill restores.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, Rig, type RigNode } from './rig.js';
import { type Rgw, startRgw } from '../store/rgw.js';
import { countItems, createItems, newBaseDir, waitUntil } from './helpers.js';
import { listBackups, runStore, storeEnv } from './store-helpers.js';

/** The last commit before the upgrade: what a cluster runs when a rolling update begins. */
const OLD_RELEASE = 'ba2924c';

let rig: Rig;
let primary: RigNode;
let oldCli: string;
let rgw: Rgw;
const STORE_URL = 's3://interop/cluster';

beforeAll(async () => {
  const base = await newBaseDir('interop');
  const old = join(base, 'old-release');
  await mkdir(old, { recursive: true });
  execFileSync('sh', ['-c', `git -C "${REPO}" archive ${OLD_RELEASE} agent package.json tsconfig.json | tar -x -C "${old}"`]);
  await symlink(join(REPO, 'node_modules'), join(old, 'node_modules'));
  execFileSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(old, 'tsconfig.json')]);
  oldCli = join(old, 'dist/cli.js');
  // Node 1 runs the old release, node 2 this one.
  rig = new Rig({ baseDir: base, ipPrefix: '127.0.1.5', agentCli: { 1: oldCli } });
  primary = rig.node(0);
  await primary.up();
  await createItems(primary, 5);
  rgw = await startRgw();
  await rgw.createBucket('interop');
}, 180_000);

afterAll(async () => {
  await rig?.destroy();
  await rgw?.stop();
});

async function replicates(node: RigNode): Promise<void> {
  await node.startServer();
  node.startSidecar();
  await node.waitFor('/readyz', 120_000);
  await waitUntil(async () => (await countItems(node)) === 5, `5 rows on node ${node.ordinal}`);
}

const accepted = (lines: Record<string, unknown>[]) => lines.find((l) => l.msg === 'peer accepted, streaming');

describe('clones across releases', () => {
  it('an old receiver clones from this sender over the plain GET (chunked body, trailer)', async () => {
    const node = rig.node(1);
    const run = await node.init();
    expect(run.code, JSON.stringify(run.lines.at(-1))).toBe(0);
    expect(accepted(run.lines)?.framing).toBeUndefined();
    await replicates(node);
    await node.down();
    await rm(node.dir, { recursive: true, force: true });
  });

  it('this receiver clones from an old sender over the plain GET, raw even when it would take zstd; a backup from it is compressed here and restores', async () => {
    await primary.stopSidecar();
    primary.sidecar = null;
    const oldSidecar = rig.spawnAgent(['sidecar'], primary.agentEnv(), join(primary.dir, 'sidecar-old.log'), { cli: oldCli });
    primary.sidecar = oldSidecar;
    await primary.waitFor('/readyz');
    const node = rig.node(2);
    const run = await node.init({ CLONE_COMPRESSION: 'zstd' });
    expect(run.code, JSON.stringify(run.lines.at(-1))).toBe(0);
    expect(accepted(run.lines)).toMatchObject({ framing: 'chunked', compression: 'none' });
    await replicates(node);
    await node.down();
    await rm(node.dir, { recursive: true, force: true });
    // `backup` from the old sender: it sends raw, so the stream is compressed here, and restores.
    const run2 = await runStore(rig, ['backup'], storeEnv(rig, rgw, STORE_URL, { BACKUP_SOURCE: 'primary' }));
    expect(run2.code, run2.stderr).toBe(0);
    expect(run2.lines.find((l) => l.msg === 'source accepted, uploading')).toMatchObject({ compressed_by: 'agent' });
    const drill = await runStore(rig, ['verify-backup'], storeEnv(rig, rgw, STORE_URL, { DRILL_DIR: await newBaseDir('interop-drill') }));
    expect(drill.code, drill.stderr).toBe(0);
    const [listed] = await listBackups(rig, storeEnv(rig, rgw, STORE_URL));
    expect(listed).toMatchObject({ id: run2.stdout.trim(), data: { compression: 'zstd' }, drill: { ok: true } });
    await primary.stopSidecar();
    primary.startSidecar();
    await primary.waitFor('/readyz');
  }, 90_000);

  it('this receiver and this sender use the upgrade: the socket goes to mbstream, the verdict is the last file', async () => {
    const node = rig.node(2);
    const run = await node.init();
    expect(run.code, JSON.stringify(run.lines.at(-1))).toBe(0);
    expect(accepted(run.lines)).toMatchObject({ framing: 'mysql-agent-xbstream', compression: 'none' });
    const verified = run.lines.find((l) => l.msg === 'stream complete and verified');
    expect(Number(verified?.bytes)).toBeGreaterThan(1_000_000);
    await replicates(node);
    await node.down();
    await rm(node.dir, { recursive: true, force: true });
  });

  it('with CLONE_COMPRESSION=zstd this sender compresses the upgraded stream and the clone is the same', async () => {
    const node = rig.node(2);
    const run = await node.init({ CLONE_COMPRESSION: 'zstd' });
    expect(run.code, JSON.stringify(run.lines.at(-1))).toBe(0);
    expect(accepted(run.lines)).toMatchObject({ framing: 'mysql-agent-xbstream', compression: 'zstd' });
    await replicates(node);
    await node.down();
  });
});
