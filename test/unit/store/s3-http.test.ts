/** The pure half of the S3 edge: where a request goes, how its query is written, what an error answer says. */
import { describe, expect, it } from 'vitest';
import { S3ResponseError, defaultCredentials, escapeUri, many, queryString, responseError, targetOf } from '../../../agent/store/s3-http.js';
import type { StoreConfig } from '../../../agent/store/settings.js';

const config = (over: Partial<StoreConfig> = {}): StoreConfig => ({ bucket: 'backups', prefix: 'c1/', endpoint: null, region: 'eu-west-1', forcePathStyle: false, ...over });

describe('targetOf', () => {
  it("AWS: the region's endpoint over TLS, the bucket as a virtual host", () => {
    expect(targetOf(config(), 'c1/mysql-agent/lock.json')).toEqual({ protocol: 'https:', hostname: 'backups.s3.eu-west-1.amazonaws.com', port: undefined, path: '/c1/mysql-agent/lock.json' });
    expect(targetOf(config(), null)).toEqual({ protocol: 'https:', hostname: 'backups.s3.eu-west-1.amazonaws.com', port: undefined, path: '/' });
  });
  it('a bucket with a dot goes path style: a virtual host with a dot would not match the wildcard certificate', () => {
    expect(targetOf(config({ bucket: 'my.backups' }), 'k')).toMatchObject({ hostname: 's3.eu-west-1.amazonaws.com', path: '/my.backups/k' });
  });
  it('S3_ENDPOINT with path style keeps its scheme, port and path', () => {
    expect(targetOf(config({ endpoint: 'http://127.0.0.1:7480', forcePathStyle: true }), 'a/b')).toEqual({ protocol: 'http:', hostname: '127.0.0.1', port: 7480, path: '/backups/a/b' });
    expect(targetOf(config({ endpoint: 'https://gw.example/s3/', forcePathStyle: true }), null)).toEqual({ protocol: 'https:', hostname: 'gw.example', port: undefined, path: '/s3/backups' });
    expect(targetOf(config({ endpoint: 'https://minio.example:9000', forcePathStyle: false }), 'k')).toMatchObject({ hostname: 'backups.minio.example', port: 9000, path: '/k' });
  });
  it('escapes each segment of a key, never the slashes', () => {
    expect(targetOf(config({ forcePathStyle: true }), "p/a b+c!'()*~.json").path).toBe('/backups/p/a%20b%2Bc%21%27%28%29%2A~.json');
  });
});

describe('queryString', () => {
  it('writes what the signer canonicalises: RFC 3986 escapes, an empty value as a bare name', () => {
    expect(queryString({ uploads: '', prefix: 'c1/mysql-agent/' })).toBe('uploads&prefix=c1%2Fmysql-agent%2F');
    expect(queryString({ 'list-type': '2', 'continuation-token': 'a+b=/c' })).toBe('list-type=2&continuation-token=a%2Bb%3D%2Fc');
    expect(queryString({})).toBe('');
    expect(escapeUri("!'()*")).toBe('%21%27%28%29%2A');
  });
});

describe('responseError', () => {
  it("takes the code from the XML body, else names the status", () => {
    const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><BucketName>x</BucketName><RequestId>tx1</RequestId></Error>';
    expect(responseError(404, body)).toMatchObject({ status: 404, code: 'NoSuchBucket', name: 'NoSuchBucket' });
    expect(responseError(404, '')).toMatchObject({ status: 404, code: 'NotFound' });
    expect(responseError(403, '')).toMatchObject({ code: 'Forbidden' });
    expect(responseError(412, '')).toMatchObject({ code: 'PreconditionFailed' });
    expect(responseError(502, '<html><body>Bad Gateway</body></html>')).toMatchObject({ status: 502, code: 'HTTP502' });
    expect(responseError(500, '<html')).toBeInstanceOf(S3ResponseError);
  });
});

describe('many', () => {
  it('reads an element S3 repeats as a list, whether absent, one or several', () => {
    expect(many(undefined)).toEqual([]);
    expect(many({ Key: 'a' })).toEqual([{ Key: 'a' }]);
    expect(many([{ Key: 'a' }, { Key: 'b' }])).toHaveLength(2);
  });
});

describe('defaultCredentials', () => {
  it('takes keys in the environment as they are, with a session token if there is one', async () => {
    expect(await defaultCredentials({ AWS_ACCESS_KEY_ID: 'AKIA1', AWS_SECRET_ACCESS_KEY: 'secret1' })()).toEqual({ accessKeyId: 'AKIA1', secretAccessKey: 'secret1' });
    expect(await defaultCredentials({ AWS_ACCESS_KEY_ID: 'AKIA1', AWS_SECRET_ACCESS_KEY: 'secret1', AWS_SESSION_TOKEN: 'tok' })()).toEqual({ accessKeyId: 'AKIA1', secretAccessKey: 'secret1', sessionToken: 'tok' });
  });
  it('without both keys, or with an expiry, asks the SDK chain (here: nothing to find, so its own error)', async () => {
    const saved = { ...process.env };
    try {
      for (const v of Object.keys(process.env)) if (v.startsWith('AWS_')) delete process.env[v];
      Object.assign(process.env, { AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/nonexistent/config', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials' });
      for (const env of [{ AWS_ACCESS_KEY_ID: 'AKIA1' }, { AWS_ACCESS_KEY_ID: 'AKIA1', AWS_SECRET_ACCESS_KEY: 'secret1', AWS_CREDENTIAL_EXPIRATION: '2030-01-01T00:00:00Z' }]) {
        const err = await defaultCredentials(env)().then(() => null, (e: unknown) => e as Error);
        expect(err?.name).toBe('CredentialsProviderError');
      }
    } finally {
      process.env = saved;
    }
  });
});
