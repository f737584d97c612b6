/** The S3 edge (agent/store/s3.ts, lock.ts) against the real store: errors, the lock, aborted uploads. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AddressInfo, connect, createServer } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { CreateMultipartUploadCommand, HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupError, StoreError } from '../../agent/core/errors.js';
import { type BackupId, lockKey } from '../../agent/store/layout.js';
import { acquireLock } from '../../agent/store/lock.js';
import { FILE_PART_BYTES, Store } from '../../agent/store/s3.js';
import { defaultCredentials } from '../../agent/store/s3-http.js';
import type { StoreConfig } from '../../agent/store/settings.js';
import { type Rgw, startRgw } from './rgw.js';

let rgw: Rgw;
const config = (over: Partial<StoreConfig> = {}): StoreConfig => ({ bucket: 'edge', prefix: 'c1/', endpoint: rgw.endpoint, region: 'us-east-1', forcePathStyle: true, ...over });
/** A Store with explicit credentials (the agent itself takes them from the SDK's chain: the environment). */
const storeWith = (c: StoreConfig, user = rgw.user) => new Store(c, { credentials: async () => ({ accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey }) });
const message = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('did not fail');
};

beforeAll(async () => {
  rgw = await startRgw();
  await rgw.createBucket('edge');
});
afterAll(async () => rgw?.stop());

describe('store errors name the variable or bucket, never the secret', () => {
  it('a missing bucket', async () => {
    const err = await message(storeWith(config({ bucket: 'no-such-bucket' })).reach(AbortSignal.timeout(10_000)));
    expect(err).toBeInstanceOf(StoreError);
    expect(err.message).toMatch(/bucket "no-such-bucket" does not exist at http:\/\/127\.0\.0\.1:7480: create it, or fix the bucket in BACKUP_STORE_URL/);
  });
  it('a wrong secret key and an unknown access key', async () => {
    const wrongSecret = await message(storeWith(config(), { ...rgw.user, secretAccessKey: 'not-the-secret-at-all' }).reach(AbortSignal.timeout(10_000)));
    expect(wrongSecret.message).toMatch(/AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID/);
    expect(wrongSecret.message).not.toContain('not-the-secret-at-all');
    const unknown = await message(storeWith(config(), { ...rgw.user, accessKeyId: 'AKIDUNKNOWN' }).reach(AbortSignal.timeout(10_000)));
    expect(unknown.message).toContain('AWS_ACCESS_KEY_ID');
    expect(unknown.message).not.toContain(rgw.user.secretAccessKey);
  });
  it('no credentials anywhere: the SDK chain finds none, and the line names the variables', async () => {
    const saved = { ...process.env };
    try {
      for (const v of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI']) delete process.env[v];
      // Nothing leaves loopback: no instance metadata service, no shared files.
      Object.assign(process.env, { AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/nonexistent/config', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials' });
      const err = await message(new Store(config()).reach(AbortSignal.timeout(20_000)));
      expect(err).toBeInstanceOf(StoreError);
      expect(err.message).toMatch(/no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    } finally {
      process.env = saved;
    }
  });
  it('credentials with an expiry in the environment go through the SDK chain, which takes them', async () => {
    const saved = { ...process.env };
    try {
      const expiry = new Date(Date.now() + 3_600_000).toISOString();
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: rgw.user.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.user.secretAccessKey, AWS_CREDENTIAL_EXPIRATION: expiry, AWS_EC2_METADATA_DISABLED: 'true' });
      const identity = await defaultCredentials()();
      expect(identity.expiration?.toISOString()).toBe(expiry);
      await new Store(config()).reach(AbortSignal.timeout(10_000));
    } finally {
      process.env = saved;
    }
  });
  it('credentials from the environment, as the agent runs: the chain takes them', async () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: rgw.user.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.user.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' });
      const store = new Store(config());
      await store.reach(AbortSignal.timeout(10_000));
      await store.putText('c1/env-check.json', '{}');
      expect(await store.getText('c1/env-check.json')).toBe('{}');
      await store.delete('c1/env-check.json');
    } finally {
      process.env = saved;
    }
  });
  it('an unreachable store: retried, then given up with the reason', async () => {
    const started = Date.now();
    const err = await message(storeWith(config({ endpoint: 'http://127.0.0.1:1' })).reach(AbortSignal.timeout(60_000)));
    expect(err.message).toMatch(/store unreachable at http:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\); gave up after 20 s/);
    expect(Date.now() - started).toBeGreaterThan(5_000);
  });
});

/** A TCP forwarder to the store on `port` (0: any free one), every client chunk held `holdMs` first. */
async function forwarder(port = 0, holdMs = 0) {
  const target = new URL(rgw.endpoint);
  const server = createServer((socket) => {
    const upstream = connect(Number(target.port), target.hostname);
    socket.on('data', (chunk) => void delay(holdMs).then(() => upstream.write(chunk)));
    upstream.pipe(socket);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return server;
}

describe('reachWith: the first reads beside the probe', () => {
  it('on a reachable store, they are sent once, beside the probe', async () => {
    const store0 = storeWith(config());
    await store0.putText('c1/reach-with.json', '{"n":1}');
    // Every request held 1 s on its way to the store: one after the other, the probe and the read take 2 s.
    const held = await forwarder(0, 1_000);
    const store = storeWith(config({ endpoint: `http://127.0.0.1:${(held.address() as AddressInfo).port}` }));
    let reads = 0;
    try {
      const started = Date.now();
      const text = await store.reachWith(AbortSignal.timeout(10_000), () => (reads++, store.getText('c1/reach-with.json')));
      expect(Date.now() - started).toBeLessThan(1_800);
      expect(text).toBe('{"n":1}');
      expect(reads).toBe(1);
    } finally {
      store.destroy();
      held.close();
      await store0.delete('c1/reach-with.json');
    }
  });
  it('reads that failed while the store was down run again once it answers', async () => {
    const store0 = storeWith(config());
    await store0.putText('c1/reach-later.json', 'later');
    // A port that refuses until a forwarder to the store starts on it, past one request's own retries (5 s).
    const free = createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as AddressInfo).port;
    await new Promise((r) => free.close(r));
    const opening = delay(6_500).then(() => forwarder(port));
    const store = storeWith(config({ endpoint: `http://127.0.0.1:${port}` }));
    const errors: string[] = [];
    try {
      const text = await store.reachWith(AbortSignal.timeout(30_000), () =>
        store.getText('c1/reach-later.json').catch((err: unknown) => {
          errors.push((err as Error).message);
          throw err;
        }),
      );
      expect(text).toBe('later');
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/store unreachable at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    } finally {
      const opened = await opening;
      store.destroy();
      opened.close();
      await store0.delete('c1/reach-later.json');
    }
  });
  it("the probe's error is the one reported, not the reads'", async () => {
    const err = await message(storeWith(config({ bucket: 'no-such-bucket' })).reachWith(AbortSignal.timeout(10_000), async () => Promise.reject(new Error('the read failed'))));
    expect(err.message).toMatch(/bucket "no-such-bucket" does not exist/);
  });
});

describe('the lock', () => {
  it('lets exactly one of two runs in, names the holder to the other, and is free after release', async () => {
    const store = storeWith(config());
    const results = await Promise.allSettled([
      acquireLock(store, '20261201T000000Z-00000a' as BackupId, 'a'),
      acquireLock(store, '20261201T000000Z-00000b' as BackupId, 'b'),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(BackupError);
    expect(lost[0]!.reason.message).toMatch(/another backup run holds the store's lock \(backup 20261201T000000Z-00000[ab] from [ab]/);
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>).value.release();
    expect(await store.getText(lockKey('c1/'))).toBeNull();
  });
  it('takes over a lock its holder stopped renewing', async () => {
    const store = storeWith(config());
    const old = Date.now() - 10 * 60_000;
    await acquireLock(store, '20261201T000000Z-0000dd' as BackupId, 'dead', () => old);
    const lock = await acquireLock(store, '20261201T000000Z-0000ee' as BackupId, 'alive');
    expect(lock.replaced?.host).toBe('dead');
    await lock.release();
  });
  it('renew and release know the lock is theirs by its ETag (a HEAD), and stop when another run has written it', async () => {
    const store = storeWith(config({ prefix: 'c4/' }));
    const key = lockKey('c4/');
    const reads: string[] = [];
    const counted = Object.assign(Object.create(store) as Store, {
      getText: async (k: string) => (reads.push(k), store.getText(k)),
    });
    const lock = await acquireLock(counted, '20261201T000000Z-0000c4' as BackupId, 'a');
    await lock.renew();
    expect(JSON.parse((await store.getText(key))!).id).toBe('20261201T000000Z-0000c4');
    await lock.release();
    expect(await store.getText(key)).toBeNull();
    expect(reads).toEqual([]);
    // Another run's lock in its place (this one was stalled past LOCK_STALE_MS): renew stops, release leaves it.
    const stalled = await acquireLock(counted, '20261201T000000Z-0000c5' as BackupId, 'a');
    await store.putText(key, '{"id":"20261201T000000Z-0000c6","host":"b"}\n');
    expect((await message(stalled.renew())).message).toMatch(/lost the store's lock to another run/);
    await stalled.release();
    expect(JSON.parse((await store.getText(key))!).host).toBe('b');
    expect(reads).toEqual([]);
    await store.delete(key);
  });
  it('with a store that answers a write without an ETag, the lock is read back to know it is its own', async () => {
    const store = storeWith(config({ prefix: 'c5/' }));
    const key = lockKey('c5/');
    const untagged = Object.assign(Object.create(store) as Store, {
      putText: async (...args: Parameters<Store['putText']>) => ((await store.putText(...args)) === null ? null : { etag: null }),
    });
    const lock = await acquireLock(untagged, '20261201T000000Z-0000c7' as BackupId, 'a');
    await lock.renew();
    await store.putText(key, '{"id":"20261201T000000Z-0000c8","host":"b"}\n');
    expect((await message(lock.renew())).message).toMatch(/lost the store's lock to another run/);
    await lock.release();
    expect(JSON.parse((await store.getText(key))!).host).toBe('b');
    await store.delete(key);
    const again = await acquireLock(untagged, '20261201T000000Z-0000c9' as BackupId, 'a');
    await again.release();
    expect(await store.getText(key)).toBeNull();
  });
  it('cannot be taken over with one conditional request: RGW answers 412 to If-Match even with the ETag HEAD gives', async () => {
    const store = storeWith(config());
    const key = lockKey('c2/');
    await store.putText(key, '{"stale":true}\n');
    const { ETag } = await rgw.client().send(new HeadObjectCommand({ Bucket: 'edge', Key: key }));
    expect(ETag).toMatch(/^"[0-9a-f]{32}"$/);
    const err = await message(rgw.client().send(new PutObjectCommand({ Bucket: 'edge', Key: key, Body: '{"mine":true}\n', IfMatch: ETag })));
    expect((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode).toBe(412);
    expect(await store.getText(key)).toBe('{"stale":true}\n');
    await store.delete(key);
  });
  it('two runs taking over one stale lock at once: the later one holds it, the earlier steps back before touching anything', async () => {
    const store = storeWith(config({ prefix: 'c3/' }));
    await acquireLock(store, '20261201T000000Z-0000d1' as BackupId, 'dead', () => Date.now() - 10 * 60_000);
    // The unlucky order a delete-then-create takeover allows: B judged the lock stale, then
    // deletes it only after A has already put its own in place.
    let aCreated!: () => void;
    const aHasIt = new Promise<void>((resolve) => (aCreated = resolve));
    let bRead!: () => void;
    const bJudged = new Promise<void>((resolve) => (bRead = resolve));
    const a = Object.assign(Object.create(store) as Store, {
      delete: async (key: string) => {
        await bJudged;
        return store.delete(key);
      },
      putText: async (...args: Parameters<Store['putText']>) => {
        const done = await store.putText(...args);
        if (done && args[2]?.onlyIfAbsent) aCreated();
        return done;
      },
    });
    const b = Object.assign(Object.create(store) as Store, {
      getText: async (key: string) => {
        const text = await store.getText(key);
        bRead();
        return text;
      },
      delete: async (key: string) => {
        await aHasIt;
        return store.delete(key);
      },
    });
    const results = await Promise.allSettled([
      acquireLock(a, '20261201T000000Z-0000a1' as BackupId, 'a'),
      acquireLock(b, '20261201T000000Z-0000b1' as BackupId, 'b'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
    expect(((results[0] as PromiseRejectedResult).reason as Error).message).toMatch(/took over the stale lock at the same moment/);
    expect(JSON.parse((await store.getText(lockKey('c3/')))!).host).toBe('b');
    await (results[1] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>).value.release();
  });
});

describe('uploads', () => {
  it("a killed run's unfinished uploads are aborted, but not the one under the folder this run spares", async () => {
    const s3 = rgw.client();
    const leftover = 'c6/mysql-agent/backups/20261201T000000Z-0000a6/data.xbstream.zst';
    const mine = 'c6/mysql-agent/backups/20261201T000000Z-0000b6/data.xbstream.zst';
    for (const Key of [leftover, mine]) await s3.send(new CreateMultipartUploadCommand({ Bucket: 'edge', Key }));
    const store = storeWith(config({ prefix: 'c6/' }));
    expect(await store.abortLeftoverUploads(undefined, 'c6/mysql-agent/backups/20261201T000000Z-0000b6/')).toEqual([leftover]);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'edge', Prefix: 'c6/' }));
    expect((uploads.Uploads ?? []).map((u) => u.Key)).toEqual([mine]);
    expect(await store.abortLeftoverUploads()).toEqual([mine]);
  });
  it('a body that fails leaves no object and no unfinished multipart upload', async () => {
    const store = storeWith(config());
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= 20 * 1024 * 1024) return this.destroy(new Error('source broke'));
        sent += 1024 * 1024;
        this.push(Buffer.alloc(1024 * 1024, 7));
      },
    });
    const err = await message(store.upload('c1/mysql-agent/backups/20261201T000000Z-0000ff/data.xbstream', body, AbortSignal.timeout(30_000)));
    expect(err.message).toContain('source broke');
    expect(await store.size('c1/mysql-agent/backups/20261201T000000Z-0000ff/data.xbstream')).toBeNull();
    const uploads = await rgw.client().send(new ListMultipartUploadsCommand({ Bucket: 'edge', Prefix: 'c1/' }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });

  it('sizes the parts for the expected bytes: 20 MiB in 5 MiB parts is 4, in the 12 MiB parts of a 96,000 MiB estimate 2', async () => {
    const store = storeWith(config());
    const body = () => Readable.from((function* () { for (let i = 0; i < 20; i++) yield Buffer.alloc(1024 * 1024, i); })());
    const parts = async (key: string) => /-(\d+)"?$/.exec((await rgw.client().send(new HeadObjectCommand({ Bucket: 'edge', Key: key }))).ETag ?? '')?.[1];
    await store.upload('c1/parts/default', body(), AbortSignal.timeout(30_000));
    // 12 MiB × 10,000 parts / 1.25 = 96,000 MiB: the largest estimate 12 MiB parts hold.
    await store.upload('c1/parts/estimated', body(), AbortSignal.timeout(30_000), (96_000 * 1024 * 1024));
    expect(await parts('c1/parts/default')).toBe('4');
    expect(await parts('c1/parts/estimated')).toBe('2');
    expect(await store.size('c1/parts/estimated')).toBe(20 * 1024 * 1024);
    // Parts go up in flight at once from reused buffers: the object must still be the stream, byte for byte.
    const sha = async (chunks: AsyncIterable<Buffer>) => {
      const h = createHash('sha256');
      for await (const c of chunks) h.update(c);
      return h.digest('hex');
    };
    const { body: stored, length } = await store.download('c1/parts/default', AbortSignal.timeout(30_000));
    expect(length).toBe(20 * 1024 * 1024);
    expect(await sha(stored)).toBe(await sha(body()));
  });

  it('a file goes up in parts read from the file (each part twice: its SHA-256, then the bytes), whole and in order', async () => {
    const store = storeWith(config());
    const dir = await mkdtemp(join(tmpdir(), 'edge-file-'));
    try {
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      const parts = async (key: string) => /-(\d+)"?$/.exec((await rgw.client().send(new HeadObjectCommand({ Bucket: 'edge', Key: key }))).ETag ?? '')?.[1];
      const readBack = async (key: string) => {
        const chunks: Buffer[] = [];
        for await (const c of (await store.download(key, AbortSignal.timeout(30_000))).body) chunks.push(c as Buffer);
        return Buffer.concat(chunks);
      };
      // Two parts and a short third, none a multiple of the 256 KiB read: a chunk that repeats or goes missing shows.
      const cases = { big: randomBytes(2 * FILE_PART_BYTES + 123_457), exact: randomBytes(FILE_PART_BYTES), small: randomBytes(70_001), empty: Buffer.alloc(0) };
      for (const [name, bytes] of Object.entries(cases)) {
        await writeFile(join(dir, name), bytes);
        await store.uploadFile(`c1/files/${name}`, join(dir, name), AbortSignal.timeout(60_000));
        expect(sha(await readBack(`c1/files/${name}`)), name).toBe(sha(bytes));
      }
      expect(await parts('c1/files/big')).toBe('3');
      expect(await parts('c1/files/exact')).toBeUndefined(); // one part's worth: a single PUT
      const uploads = await rgw.client().send(new ListMultipartUploadsCommand({ Bucket: 'edge', Prefix: 'c1/files/' }));
      expect(uploads.Uploads ?? []).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
