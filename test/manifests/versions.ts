/**
 * The pinned images (manifests/base/versions.env): each server image and the image the agent is
 * built on, whose backup tool must read that server's files. Pure functions over the file's text,
 * for the checks (check.ts), the stand-ins' tests and the container tier:
 * - parseVersions: VARIABLE=image lines, as kustomize's env files and bash read them;
 * - toolProblem: whether a backup-tool image serves a server image, by the vendors' rules;
 * - versionsProblems: every pin is a release (no floating tag) and the MySQL pair agrees;
 * - imageMentions / mentionProblems: every public server or tool image that a document names is
 *   the pinned one, so a bump that forgets the Dockerfile, a README or the drop-in recipe fails.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFESTS, REPO } from './render.js';

export const VERSIONS_FILE = join(MANIFESTS, 'base/versions.env');
/** The variables versions.env must set: the servers of the two flavors and the MySQL flavor's tool. */
export const PINS = ['MARIADB_IMAGE', 'MYSQL_IMAGE', 'XTRABACKUP_IMAGE'] as const;
export type Pins = ReadonlyMap<string, string>;

/** VARIABLE=value lines; comments and blank lines skipped; anything else is an error naming the line. */
export function parseVersions(text: string, file = VERSIONS_FILE): Pins {
  const pins = new Map<string, string>();
  text.split('\n').forEach((line, i) => {
    if (/^\s*(#|$)/.test(line)) return;
    const m = /^([A-Z][A-Z0-9_]*)=(\S+)$/.exec(line);
    if (!m) throw new Error(`${file}:${i + 1}: "${line}" is not VARIABLE=image`);
    pins.set(m[1]!, m[2]!);
  });
  return pins;
}

/** The pins of versions.env; a missing file pins nothing (versionsProblems then names every pin). */
export const readVersions = (file = VERSIONS_FILE): Pins => (existsSync(file) ? parseVersions(readFileSync(file, 'utf8'), file) : new Map());

/** An image reference: the repository's last path component names the product; the tag is its version. */
export function imageParts(image: string): { name: string; tag: string; release: number[] | undefined } {
  const colon = image.lastIndexOf(':');
  const repo = colon > image.lastIndexOf('/') ? image.slice(0, colon) : image;
  const tag = colon > image.lastIndexOf('/') ? image.slice(colon + 1) : 'latest';
  // A release: X.Y.Z, and for Percona's images the build after a dash (8.4.0-6, 8.4.0-6.1).
  const m = /^(\d+)\.(\d+)\.(\d+)(?:-\d+(?:\.\d+)?)?$/.exec(tag);
  return { name: repo.slice(repo.lastIndexOf('/') + 1), tag, release: m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined };
}

/**
 * Why the backup tool in `tool` cannot serve the server `server`, or undefined when it can:
 * - MariaDB: mariadb-backup ships with the server and is built from the same tree, so the agent
 *   is built on the server's own image, the same release;
 * - MySQL: Percona XtraBackup of the server's series. XtraBackup 8.0 before 8.0.34 refused a
 *   server newer than itself ("Unsupported server version … Please upgrade PXB"); for the 8.4 LTS,
 *   Percona states that any XtraBackup 8.4 release works with any MySQL 8.4 release, and that 8.4
 *   refuses 8.0 and 9.x servers.
 */
export function toolProblem(tool: string, server: string): string | undefined {
  const t = imageParts(tool);
  const s = imageParts(server);
  for (const [image, parts] of [[tool, t], [server, s]] as const) {
    if (!parts.release) return `${image} is not pinned to a release (tag ${parts.tag} moves with every push)`;
  }
  if (s.name === 'mariadb') {
    return tool === server ? undefined : `${tool} is not the server's image ${server}: mariadb-backup must be the server's own build`;
  }
  if (s.name === 'mysql') {
    if (t.name !== 'percona-xtrabackup') return `${tool} is not Percona XtraBackup, the backup tool for ${server}`;
    const series = (r: number[]) => r.slice(0, 2).join('.');
    return series(t.release!) === series(s.release!) ? undefined : `${tool} is XtraBackup ${series(t.release!)}, which backs up MySQL ${series(t.release!)} only, and the server is ${server}`;
  }
  return `no backup tool is known for ${server}`;
}

/** Problems of versions.env on its own: every pin present and a release, the MySQL pair in agreement. */
export function versionsProblems(pins: Pins): string[] {
  const out: string[] = [];
  for (const name of PINS) if (!pins.has(name)) out.push(`versions.env sets no ${name}`);
  for (const [name, image] of pins) if (!imageParts(image).release) out.push(`versions.env ${name}=${image}: not pinned to a release (tag ${imageParts(image).tag} moves with every push)`);
  const mysql = pins.get('MYSQL_IMAGE');
  const tool = pins.get('XTRABACKUP_IMAGE');
  const why = mysql && tool ? toolProblem(tool, mysql) : undefined;
  if (why) out.push(`versions.env: ${why}`);
  return out;
}

/** The pinned image a value stands for: a literal image, or "$VAR" / $VAR read from versions.env. */
export function resolvePin(value: string, pins: Pins): string | undefined {
  const variable = /^"?\$\{?([A-Z][A-Z0-9_]*)\}?"?$/.exec(value);
  return variable ? pins.get(variable[1]!) : value;
}

/** Products whose images the documents may name; each mention must be the pinned image. */
const PRODUCTS = new Set(['mariadb', 'mysql', 'percona-xtrabackup']);

/** Public server and tool images named in a text (stand-ins, mysql-agent and variables excluded), with their lines. */
export function imageMentions(text: string): { line: number; image: string }[] {
  const out: { line: number; image: string }[] = [];
  text.split('\n').forEach((line, i) => {
    // Tags that are versions or the floating names; `chown mysql:mysql` and `host:3306`-like text are not images.
    for (const m of line.matchAll(/(?<![\w./$])((?:\w[\w.-]*\/)*(\w[\w.-]*)):(\d[\w.-]*|latest|lts)(?![\w:])/g)) {
      if (PRODUCTS.has(m[2]!) && !m[1]!.startsWith('mysql-agent')) out.push({ line: i + 1, image: `${m[1]}:${m[3]!.replace(/\.$/, '')}` });
    }
  });
  return out;
}

/** Each mention of a server or tool image in `files` (path → text) that is not the pinned image. */
export function mentionProblems(files: ReadonlyMap<string, string>, pins: Pins): string[] {
  const pinned = new Map([...pins.values()].map((image) => [imageParts(image).name, image]));
  const out: string[] = [];
  for (const [path, text] of files) {
    for (const { line, image } of imageMentions(text)) {
      const pin = pinned.get(imageParts(image).name);
      if (image !== pin) out.push(`${path}:${line} names ${image}; manifests/base/versions.env pins ${pin ?? `no ${imageParts(image).name} image`}`);
    }
  }
  return out;
}

/** Where users and the build read image names: the READMEs, the Dockerfile, the stand-ins, the manifests, the compose file. */
export const DOCUMENTS = ['README.md', 'manifests/README.md', 'Dockerfile', 'docker-compose.yml', 'image', 'manifests'];

async function documentTexts(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const path of DOCUMENTS) {
    const entries = (await stat(join(REPO, path))).isDirectory() ? (await readdir(join(REPO, path), { recursive: true })).map((p) => join(path, p)) : [path];
    for (const file of entries.sort()) {
      if ((await stat(join(REPO, file))).isFile() && !file.endsWith('secret.env')) files.set(file, await readFile(join(REPO, file), 'utf8'));
    }
  }
  return files;
}

/** mentionProblems over the documents (or the `files` given). */
export async function documentProblems(pins: Pins, files?: ReadonlyMap<string, string>): Promise<string[]> {
  return mentionProblems(files ?? (await documentTexts()), pins);
}
