/**
 * S3Http's file-range bodies against a loopback server that breaks the first attempt mid-body: the
 * retry reads the range from the file again, and what arrives is the range, signed with its own
 * SHA-256. (RGW cannot be made to drop a connection halfway; store-edge covers the real store.)
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { type RequestListener, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { S3Http } from '../../agent/store/s3-http.js';

let dir: string;
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), 's3-range-'))));
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** An S3Http to a loopback server answering with `handler`, and the file at `name` open for reading; `close` ends all three. */
async function loopback(handler: RequestListener, name: string) {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const s3 = new S3Http(
    { bucket: 'b', prefix: '', endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, region: 'us-east-1', forcePathStyle: true },
    async () => ({ accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' }),
  );
  const file = await open(join(dir, name), 'r');
  const close = async () => {
    await file.close();
    s3.destroy();
    server.close();
  };
  return { s3, file, close };
}

it('a range whose first attempt is cut off mid-body is read again and arrives whole, its signature over its bytes', async () => {
  const bytes = randomBytes(3 * 1024 * 1024 + 5);
  await writeFile(join(dir, 'f'), bytes);
  const attempts: { received: number; body?: Buffer; signedSha?: string }[] = [];
  const { s3, file, close } = await loopback((req, res) => {
    const attempt: (typeof attempts)[number] = { received: 0 };
    attempts.push(attempt);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      attempt.received += c.length;
      chunks.push(c);
      if (attempts.length === 1 && attempt.received > 1024 * 1024) req.socket.destroy();
    });
    req.on('end', () => {
      attempt.body = Buffer.concat(chunks);
      attempt.signedSha = String(req.headers['x-amz-content-sha256']);
      res.writeHead(200, { etag: '"e"' }).end();
    });
  }, 'f');
  try {
    // The range skips the file's first byte and stops short of its end: position and length both count.
    const res = await s3.text({ method: 'PUT', key: 'k', body: { file, position: 1, length: bytes.length - 3, buffer: Buffer.alloc(64 * 1024) } });
    expect(res.headers.etag).toBe('"e"');
  } finally {
    await close();
  }
  const want = bytes.subarray(1, bytes.length - 2);
  const sha = createHash('sha256').update(want).digest('hex');
  expect(attempts.length).toBe(2);
  expect(attempts[0]!.body).toBeUndefined();
  expect(attempts[1]!.body!.equals(want)).toBe(true);
  expect(attempts[1]!.signedSha).toBe(sha);
});

it('a file shorter than its range fails the request and says so, not a truncated object', async () => {
  await writeFile(join(dir, 'short'), randomBytes(1000));
  let requests = 0;
  const { s3, file, close } = await loopback((req, res) => {
    requests++;
    req.resume().on('end', () => res.writeHead(200).end());
  }, 'short');
  try {
    await expect(s3.text({ method: 'PUT', key: 'k', body: { file, position: 0, length: 2000, buffer: Buffer.alloc(4096) } })).rejects.toThrow(/the file ended 1000 bytes before/);
    expect(requests).toBe(0); // found while hashing, before anything is sent
  } finally {
    await close();
  }
});
