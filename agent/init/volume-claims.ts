/**
 * The replicas' data volumes as the Kubernetes API knows them: evidence for the empty-primary
 * guard that outlives the pods. After a full outage no replica pod exists (the StatefulSet's
 * OrderedReady policy creates none before ordinal 0 is ready), so no replica answers and no
 * name resolves, but the PersistentVolumeClaims `<template>-<set>-N` stay until someone deletes
 * them. One GET of the namespace's claims with the pod's service account token (a namespaced
 * Role: get, list persistentvolumeclaims) tells ordinal 0 which replicas may hold data.
 *
 * `parseClaimList` is pure; `listClaims` is the HTTPS edge (node:https: one GET needs no
 * client library); `readClaimEvidence` never rejects — an unreadable answer is evidence too.
 */
import { readFile } from 'node:fs/promises';
import { https } from '../core/builtins.js';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.js';
import { getText } from '../core/http-get.js';

/** A replica's data volume claim. */
export interface ReplicaClaim {
  readonly ordinal: number;
  readonly name: string;
  /** `status.phase`: Bound, Pending, Lost; null when absent. */
  readonly phase: string | null;
}

/** What ordinal 0 knows of the replicas' volumes (VOLUME_CLAIMS). */
export type ClaimEvidence =
  | { readonly source: 'kubernetes'; readonly claims: readonly ReplicaClaim[] }
  /** VOLUME_CLAIMS=none: no API (docker-compose, the rig); only the agents' answers count. */
  | { readonly source: 'none' }
  /** VOLUME_CLAIMS=kubernetes but the API could not be read: no decision may rest on it. */
  | { readonly source: 'unreadable'; readonly error: string };

/** Where the API is and the service account's files (token, ca.crt, namespace). */
export interface KubernetesApi {
  readonly host: string;
  readonly port: number;
  readonly serviceAccountDir: string;
}

/** The StatefulSet controller's name for ordinal N's claim of a volumeClaimTemplate. */
export const claimName = (template: string, set: string, ordinal: number) => `${template}-${set}-${ordinal}`;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/**
 * The replicas' claims (ordinal 1 and up) in a PersistentVolumeClaimList. A claim that was never
 * bound to a volume (Pending, no `spec.volumeName`) holds nothing and is left out; any other
 * counts, whatever its phase. Throws when the body is not such a list.
 */
export function parseClaimList(body: unknown, template: string, set: string): ReplicaClaim[] {
  const list = body as { kind?: unknown; items?: unknown; metadata?: { continue?: unknown } } | null;
  if (typeof list !== 'object' || list === null || list.kind !== 'PersistentVolumeClaimList' || !Array.isArray(list.items)) {
    throw new Error('the answer is not a PersistentVolumeClaimList');
  }
  // Only a request with `limit` is paged; a partial list would hide claims.
  if (typeof list.metadata?.continue === 'string' && list.metadata.continue !== '') throw new Error('the claim list is incomplete (continue token)');
  const pattern = new RegExp(`^${escapeRegExp(template)}-${escapeRegExp(set)}-(0|[1-9][0-9]{0,5})$`);
  const claims: ReplicaClaim[] = [];
  for (const item of list.items as { metadata?: { name?: unknown }; spec?: { volumeName?: unknown }; status?: { phase?: unknown } }[]) {
    const m = pattern.exec(str(item?.metadata?.name) ?? '');
    if (!m || m[1] === '0') continue;
    const phase = str(item.status?.phase);
    if (phase === 'Pending' && !str(item.spec?.volumeName)) continue;
    claims.push({ ordinal: Number(m[1]), name: m[0], phase });
  }
  return claims.sort((a, b) => a.ordinal - b.ordinal);
}

const MAX_ANSWER_CHARS = 16 << 20;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

async function serviceAccountFile(dir: string, name: string): Promise<string> {
  try {
    return await readFile(join(dir, name), 'utf8');
  } catch (err) {
    throw new Error(`cannot read the service account's ${name} in ${dir} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}): is a service account token mounted into the init container?`);
  }
}

/** The API's own reason on a failure: a Status object's message, when there is one. */
function statusMessage(text: string): string | null {
  try {
    const status = JSON.parse(text) as { kind?: unknown; message?: unknown };
    return status.kind === 'Status' && typeof status.message === 'string' ? status.message.slice(0, 500) : null;
  } catch {
    return null;
  }
}

/**
 * GET /api/v1/namespaces/<namespace>/persistentvolumeclaims with the service account's token,
 * the server checked against its ca.crt. The token is read at each call (projected tokens
 * rotate) and never appears in an error.
 */
export async function listClaims(api: KubernetesApi, timeoutMs: number): Promise<unknown> {
  const file = (name: string) => serviceAccountFile(api.serviceAccountDir, name);
  const [token, ca, namespaceText] = await Promise.all([file('token'), file('ca.crt'), file('namespace')]);
  const namespace = namespaceText.trim();
  if (!NAMESPACE.test(namespace)) throw new Error(`the service account's namespace file in ${api.serviceAccountDir} does not hold a namespace name`);
  const { status, text } = await getText(
    (onResponse) =>
      https.request(
        {
          host: api.host,
          port: api.port,
          path: `/api/v1/namespaces/${namespace}/persistentvolumeclaims`,
          method: 'GET',
          ca,
          headers: { authorization: `Bearer ${token.trim()}`, accept: 'application/json' },
        },
        onResponse,
      ),
    {
      timeoutMs,
      maxChars: MAX_ANSWER_CHARS,
      timeout: () => new Error(`the Kubernetes API did not answer within ${timeoutMs / 1000} s`),
      tooLarge: () => new Error(`the answer exceeds ${MAX_ANSWER_CHARS >> 20} Mi characters`),
    },
  );
  if (status !== 200) {
    const why = statusMessage(text);
    throw new Error(`the Kubernetes API answered HTTP ${status}${why ? `: ${why}` : ''}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error('the Kubernetes API answered something that is not JSON');
  }
}

/** The claims as evidence: `unreadable` with the reason when the API cannot be asked or answers badly. */
export async function readClaimEvidence(api: KubernetesApi, template: string, set: string, timeoutMs: number, list: typeof listClaims = listClaims): Promise<ClaimEvidence> {
  try {
    return { source: 'kubernetes', claims: parseClaimList(await list(api, timeoutMs), template, set) };
  } catch (err) {
    return { source: 'unreadable', error: errorMessage(err) };
  }
}
