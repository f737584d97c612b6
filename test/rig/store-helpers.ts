/** Running the store commands (backup, backups, verify-backup) against a rig and the test store. */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Rgw } from '../store/rgw.js';
import type { Rig } from './rig.js';

export interface StoreRun {
  readonly code: number | null;
  readonly stdout: string;
  /** The pino lines (stderr for backup and backups, which print their result on stdout; stdout for verify-backup). */
  readonly lines: Record<string, unknown>[];
  readonly stderr: string;
}

/** The environment of the backup CronJob's pod for this rig and store. */
export function storeEnv(rig: Rig, rgw: Rgw, url: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    BACKUP_STORE_URL: url,
    ...rgw.env(),
    PEER_HOST_TEMPLATE: `${rig.ipPrefix}{ordinal}`,
    BACKUP_TOKEN: rig.token,
    PEER_PROBE_COUNT: '3',
    ...extra,
  };
}

export async function runStore(rig: Rig, args: string[], env: NodeJS.ProcessEnv): Promise<StoreRun> {
  const child = rig.spawnAgent(args, env, join(rig.options.baseDir, `${args[0]}.log`));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  const lines = `${stdout}\n${stderr}`
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code, stdout, lines, stderr };
}

/** The listed backups (`backups --json`). */
export async function listBackups(rig: Rig, env: NodeJS.ProcessEnv): Promise<Record<string, any>[]> {
  const run = await runStore(rig, ['backups', '--json'], env);
  if (run.code !== 0) throw new Error(`backups exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, any>[];
}

export async function objectBytes(rgw: Rgw, bucket: string, key: string): Promise<Buffer> {
  const s3 = rgw.client();
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  } finally {
    s3.destroy();
  }
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
