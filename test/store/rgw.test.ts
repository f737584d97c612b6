/** The test store itself: Ceph RGW starts, stores and returns an object byte for byte, and stops completely. */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Rgw, startRgw } from './rgw.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('test store (Ceph RGW on loopback)', () => {
  let rgw: Rgw;
  const started = Date.now();
  let startMs = 0;
  beforeAll(async () => {
    rgw = await startRgw();
    startMs = Date.now() - started;
  });
  afterAll(async () => rgw?.stop());

  it('starts within seconds and round-trips an object through the SDK', async () => {
    expect(startMs).toBeLessThan(30_000);
    await rgw.createBucket('smoke');
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const s3 = rgw.client();
    try {
      await s3.send(new PutObjectCommand({ Bucket: 'smoke', Key: 'a/b.bin', Body: body }));
      const got = await s3.send(new GetObjectCommand({ Bucket: 'smoke', Key: 'a/b.bin' }));
      const bytes = await got.Body!.transformToByteArray();
      expect(bytes.length).toBe(body.length);
      expect(sha256(bytes)).toBe(sha256(body));
    } finally {
      s3.destroy();
    }
  });

  it('refuses a wrong secret key (it checks signatures)', async () => {
    const s3 = rgw.client({ ...rgw.user, secretAccessKey: 'wrong-secret' });
    try {
      await expect(s3.send(new GetObjectCommand({ Bucket: 'smoke', Key: 'a/b.bin' }))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
    } finally {
      s3.destroy();
    }
  });

  it('stops every daemon by its recorded PID and removes its directory', async () => {
    const { pids, dir } = rgw;
    await rgw.stop();
    for (const pid of Object.values(pids)) expect(existsSync(`/proc/${pid}`), `pid ${pid} still there`).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });
});
