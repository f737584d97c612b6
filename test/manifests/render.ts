/**
 * The manifests as Kubernetes would receive them: each flavor rendered by `kubectl kustomize`
 * (offline), with a throw-away secret.env so that no user secret is read or needed, and the
 * pieces of a pod template that both the checks and the compose rig resolve the same way.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const execFileP = promisify(execFile);
export const REPO = resolve(import.meta.dirname, '../..');
export const MANIFESTS = join(REPO, 'manifests');
export const FLAVORS = ['mariadb', 'mysql'] as const;
export type Flavor = (typeof FLAVORS)[number];
/** Kustomizations on top of a flavor for one occasion (manifests/README.md). */
export type Overlay = 'outage-recovery';

/** Values of secret.env for renders in tests: placeholders, never a user's. */
export const TEST_SECRET: Record<string, string> = {
  'root-password': 'test-root-password',
  'replication-password': 'test-replication-password',
  'agent-password': 'test-agent-password',
  'backup-token': 'test-backup-token-0123456789abcdef',
};

// Loose shapes: the schema checks type the documents, these only name what the code reads.
export interface KubeDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [field: string]: unknown;
}
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    [source: string]: unknown;
  };
}
export interface VolumeMount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}
export interface Probe {
  exec?: { command: string[] };
  httpGet?: { path: string; port: number | string };
  periodSeconds?: number;
  failureThreshold?: number;
  [field: string]: unknown;
}
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: VolumeMount[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] } };
  [field: string]: unknown;
}
export interface Volume {
  name: string;
  emptyDir?: Record<string, unknown>;
  configMap?: { name: string };
  [source: string]: unknown;
}
export interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
  volumes?: Volume[];
  securityContext?: { runAsUser?: number; runAsGroup?: number; fsGroup?: number; runAsNonRoot?: boolean };
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  [field: string]: unknown;
}
export interface StatefulSet extends KubeDoc {
  spec: {
    serviceName: string;
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
    volumeClaimTemplates?: { metadata: { name: string }; spec: { storageClassName?: string; [field: string]: unknown } }[];
  };
}

/** Renders manifests/<flavor> with `kubectl kustomize`; `edit` may change the copied tree first. */
export async function renderFlavor(flavor: Flavor | Overlay, edit?: (dir: string) => Promise<void>): Promise<KubeDoc[]> {
  const dir = await mkdtemp(join(tmpdir(), 'manifests-'));
  try {
    await cp(MANIFESTS, dir, { recursive: true });
    const secretEnv = Object.entries(TEST_SECRET).map(([k, v]) => `${k}=${v}\n`).join('');
    await writeFile(join(dir, 'base/secret.env'), secretEnv);
    await edit?.(dir);
    const { stdout } = await execFileP('kubectl', ['kustomize', join(dir, flavor)], { maxBuffer: 16 << 20 });
    return parseAllDocuments(stdout).map((d) => d.toJS() as KubeDoc);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function findDoc<T extends KubeDoc = KubeDoc>(docs: KubeDoc[], kind: string, name: string): T | undefined {
  return docs.find((d) => d.kind === kind && d.metadata?.name === name) as T | undefined;
}

export function statefulSet(docs: KubeDoc[]): StatefulSet {
  const sts = docs.find((d) => d.kind === 'StatefulSet');
  if (!sts) throw new Error('the render has no StatefulSet');
  return sts as StatefulSet;
}

/** Every container of the pod template, init containers first, in start order. */
export const podContainers = (spec: PodSpec): Container[] => [...(spec.initContainers ?? []), ...spec.containers];

/** Pod name of an ordinal, as the StatefulSet controller names it. */
export const podName = (sts: StatefulSet, ordinal: number) => `${sts.metadata.name}-${ordinal}`;

/** A ConfigMap key's value; undefined when it has none (an optional key is then left unset, as the kubelet does). */
export type ConfigMapReader = (name: string, key: string, optional: boolean) => string | undefined;

/**
 * A container's environment as the kubelet resolves it for one pod: plain values, the pod's own
 * name (fieldRef metadata.name), Secret keys through `secret` and, given `configMap`, ConfigMap
 * keys. Anything else is refused, so a source the rigs cannot reproduce fails loudly instead of
 * silently going missing.
 */
export function resolveEnv(container: Container, pod: string, secret: (name: string, key: string) => string, configMap?: ConfigMapReader): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of container.env ?? []) {
    const ref = v.valueFrom?.configMapKeyRef;
    if (v.value !== undefined) env[v.name] = v.value;
    else if (v.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[v.name] = pod;
    else if (v.valueFrom?.secretKeyRef) env[v.name] = secret(v.valueFrom.secretKeyRef.name, v.valueFrom.secretKeyRef.key);
    else if (ref && configMap) {
      const value = configMap(ref.name, ref.key, ref.optional === true);
      if (value !== undefined) env[v.name] = value;
    }
    else throw new Error(`container ${container.name}: env ${v.name} has a source the rigs do not resolve: ${JSON.stringify(v.valueFrom)}`);
  }
  return env;
}

/** The container's port number for a probe's `port` (a number or a port name). */
export function portNumber(container: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}
