/**
 * agent/store/ is the object store a backup lives in: where (settings, layout), what (the
 * manifest and the drill verdict as typed values), how long (retention), in what form
 * (which of the stream's compressions), and the S3 client edge. It imports only core/ and the
 * stream's Compression type.
 *
 * The store's settings, shared by every command that reads or writes backups. Credentials are
 * not among them: the AWS SDK's default chain reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
 * web identity (IRSA) and the rest itself, and the agent never sees, logs or passes them on.
 */
import { ConfigError } from '../core/errors.js';
import { type Setting, type SettingsReader, oneOf, text, wholeNumber } from '../core/settings.js';
import type { Compression } from '../stream/compression.js';

/** What the AWS SDK's default chain reads from the environment itself (the agent never does). */
export const SDK_VARIABLES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_PROFILE',
] as const;

export interface StoreConfig {
  readonly bucket: string;
  /** '' or a prefix ending in '/': everything of this cluster lives under it. */
  readonly prefix: string;
  /** null: AWS itself. */
  readonly endpoint: string | null;
  readonly region: string;
  readonly forcePathStyle: boolean;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9!_.*'()-]+$/;

/** `s3://bucket` or `s3://bucket/prefix/…` to bucket and a normalised prefix ('' or ending in '/'). */
export function parseStoreUrl(t: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)(\/.*)?$/.exec(t);
  const bad = (why: string) => new ConfigError(`BACKUP_STORE_URL="${t}" is invalid: ${why}`);
  if (!m) throw bad('expected s3://bucket or s3://bucket/prefix');
  const bucket = m[1]!;
  if (!BUCKET.test(bucket) || bucket.includes('..')) throw bad(`"${bucket}" is not an S3 bucket name (3-63 lower-case letters, digits, '.', '-')`);
  const segments = (m[2] ?? '').split('/').filter(Boolean);
  for (const s of segments) if (!PREFIX_SEGMENT.test(s) || s === '.' || s === '..') throw bad(`prefix segment "${s}" has characters that are not safe in an object key`);
  return { bucket, prefix: segments.length === 0 ? '' : `${segments.join('/')}/` };
}

export const BACKUP_STORE_URL: Setting<{ bucket: string; prefix: string } | null> = {
  name: 'BACKUP_STORE_URL',
  help: 's3://bucket or s3://bucket/prefix: where backups are kept',
  fallback: null,
  parse: parseStoreUrl,
};
export const S3_ENDPOINT: Setting<string | null> = {
  name: 'S3_ENDPOINT',
  help: 'URL of an S3-compatible endpoint (MinIO, Ceph RGW, ...)',
  shown: '(AWS)',
  fallback: null,
  parse: (t) => {
    let url: URL;
    try {
      url = new URL(t);
    } catch {
      throw new ConfigError(`S3_ENDPOINT="${t}" is invalid: expected a URL such as https://s3.example.com`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`S3_ENDPOINT="${t}" is invalid: expected an http:// or https:// URL`);
    if (url.username || url.password) throw new ConfigError('S3_ENDPOINT is invalid: credentials do not belong in the URL, use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY');
    return url.toString().replace(/\/$/, '');
  },
};
export const S3_REGION: Setting<string> = {
  ...text('S3_REGION', 'region for signing', 'us-east-1'),
  parse: (t) => {
    if (!/^[a-z0-9-]{1,40}$/.test(t)) throw new ConfigError(`S3_REGION="${t}" is invalid: expected a region name such as us-east-1`);
    return t;
  },
};
export const S3_FORCE_PATH_STYLE: Setting<boolean | null> = {
  name: 'S3_FORCE_PATH_STYLE',
  help: 'path-style bucket addressing: true or false',
  shown: '(true when S3_ENDPOINT is set)',
  fallback: null,
  parse: (t) => {
    if (t !== 'true' && t !== 'false') throw new ConfigError(`S3_FORCE_PATH_STYLE="${t}" is invalid: expected true or false`);
    return t === 'true';
  },
};
export const BACKUP_COMPRESSION = oneOf<Compression>('BACKUP_COMPRESSION', 'zstd or none', ['zstd', 'none'], 'zstd');
export const BACKUP_KEEP = wholeNumber('BACKUP_KEEP', 'complete backups kept; older ones are deleted after a new one completes', 7, 1, 10000);

/** The settings every store command reads. */
export const STORE_SETTINGS = [BACKUP_STORE_URL, S3_ENDPOINT, S3_REGION, S3_FORCE_PATH_STYLE];

/** The store, or a problem naming BACKUP_STORE_URL when it is required and unset. */
export function readStore(read: SettingsReader, required: boolean): StoreConfig | null {
  const url = read.get(BACKUP_STORE_URL);
  const endpoint = read.get(S3_ENDPOINT);
  const region = read.get(S3_REGION);
  const forcePathStyle = read.get(S3_FORCE_PATH_STYLE) ?? endpoint !== null;
  if (url === null) {
    if (required && !read.isSet(BACKUP_STORE_URL)) read.problem('BACKUP_STORE_URL is not set: set it to s3://bucket or s3://bucket/prefix');
    return null;
  }
  return { ...url, endpoint, region, forcePathStyle };
}
