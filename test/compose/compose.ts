/**
 * The docker-compose rig, generated from the StatefulSet's pod template so that it runs the
 * manifests themselves: per ordinal N, the pod's containers with their images, args, env,
 * mounts and security context, and the kubelet's part done by two helper services:
 *
 *   mysql-N           the pod sandbox: owns the network namespace every container of the pod joins
 *                     (so 127.0.0.1 is the pod), with the DNS name mysql-N.mysql
 *   mysql-N-volumes   prepares the pod's volumes as the kubelet does (emptyDir 0777, fsGroup)
 *   mysql-N-<init>    the init containers, one after the other, each to completion
 *   mysql-N-<name>    the containers, started when the last init container succeeded
 *
 * Secrets become required variables (`${BACKUP_TOKEN:?…}` for the key backup-token), images
 * variables defaulting to the manifest's (`${MARIADB_IMAGE:-mariadb:10.11.19}`), ConfigMap keys
 * read-only binds of the files they were generated from. There is no Kubernetes API: the
 * service account and its token volume have nothing to stand for, and the container that would
 * read the replicas' volume claims through them is told so (VOLUME_CLAIMS=none). Probes are not translated: the
 * container tests run them as the kubelet would. A pod field the rig cannot reproduce is an
 * error, never silently dropped.
 *
 * `npm run compose` writes docker-compose.yml (ordinals 0-2, mariadb flavor) at the repository root.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { AGENT_REPO, dockerfileFacts } from '../manifests/check.js';
import {
  type Container,
  type Flavor,
  type KubeDoc,
  MANIFESTS,
  REPO,
  type StatefulSet,
  podContainers,
  podName,
  renderFlavor,
  resolveEnv,
  statefulSet,
} from '../manifests/render.js';

export const COMPOSE_FILE = join(REPO, 'docker-compose.yml');
export const COMPOSE_FLAVOR: Flavor = 'mariadb';

type Service = Record<string, unknown>;

/** `backup-token` → BACKUP_TOKEN: the compose variable that carries a Secret key. */
export const secretVariable = (key: string) => key.toUpperCase().replaceAll('-', '_');

/** `mariadb:10.11.19` → MARIADB_IMAGE: the variable that overrides an image. */
export const imageVariable = (image: string) => `${image.slice(image.lastIndexOf('/') + 1).split(':')[0]!.toUpperCase().replaceAll('-', '_')}_IMAGE`;

const escapeDollars = (value: string) => value.replaceAll('$', '$$$$');

/** Container fields the rig maps, and those with no Docker meaning it leaves to the checks and the container tests. */
const CONTAINER_FIELDS = new Set([
  ...['image', 'command', 'args', 'env', 'volumeMounts', 'resources', 'securityContext'],
  ...['name', 'ports', 'readinessProbe', 'livenessProbe', 'startupProbe', 'imagePullPolicy', 'terminationMessagePath', 'terminationMessagePolicy'],
]);
const POD_FIELDS = new Set(['initContainers', 'containers', 'volumes', 'securityContext', 'terminationGracePeriodSeconds', 'serviceAccountName', 'automountServiceAccountToken']);

/** A projected volume carrying a service account token: the API's credentials, meaningless without an API. */
const isTokenVolume = (v: { projected?: { sources?: { serviceAccountToken?: unknown }[] } } | undefined) =>
  !!v?.projected?.sources?.some((p) => p.serviceAccountToken !== undefined);

/** Docker's spelling of a Kubernetes memory quantity (1Gi → 1g). */
function dockerMemory(quantity: string): string {
  const m = /^(\d+)(Ki|Mi|Gi)$/.exec(quantity);
  if (!m) throw new Error(`memory limit ${quantity}: the rig understands Ki, Mi and Gi`);
  return `${m[1]}${m[2]![0]!.toLowerCase()}`;
}

/** ConfigMap key → the file under manifests/ it was generated from (same bytes), as a path from `root`. */
async function configMapSources(docs: KubeDoc[], root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const dir of ['base', COMPOSE_FLAVOR]) {
    for (const name of await readdir(join(MANIFESTS, dir))) {
      const path = join(MANIFESTS, dir, name);
      files.set(await readFile(path, 'utf8').catch(() => ''), relative(root, path) || path);
    }
  }
  const sources = new Map<string, string>();
  for (const cm of docs.filter((d) => d.kind === 'ConfigMap') as (KubeDoc & { data?: Record<string, string> })[]) {
    for (const [key, text] of Object.entries(cm.data ?? {})) {
      const file = files.get(text);
      if (!file) throw new Error(`ConfigMap ${cm.metadata.name} key ${key} matches no file under manifests/: the rig binds files`);
      sources.set(`${cm.metadata.name}/${key}`, file.startsWith('/') || file.startsWith('.') ? file : `./${file}`);
    }
  }
  return sources;
}

export interface ComposeOptions {
  /** Pod ordinals to lay out (default: 0 to replicas-1). */
  readonly ordinals?: readonly number[];
  /** Directory the compose file will live in: bind paths are relative to it (default: the repository root). */
  readonly root?: string;
}

/** The compose project for a rendered flavor. */
export async function composeFromManifests(docs: KubeDoc[], options: ComposeOptions = {}): Promise<Record<string, unknown>> {
  const sts: StatefulSet = statefulSet(docs);
  const spec = sts.spec.template.spec;
  for (const field of Object.keys(spec)) if (!POD_FIELDS.has(field)) throw new Error(`pod field ${field}: the compose rig does not reproduce it`);
  const ctx = spec.securityContext ?? {};
  if (ctx.runAsNonRoot && !ctx.runAsUser) throw new Error('runAsNonRoot without runAsUser: the rig needs the numeric user');
  const user = ctx.runAsUser === undefined ? undefined : `${ctx.runAsUser}:${ctx.runAsGroup ?? ctx.runAsUser}`;
  const sources = await configMapSources(docs, options.root ?? REPO);
  const claims = new Set((sts.spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name));
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  const agentImage = podContainers(spec).find((c) => c.image.startsWith(`${AGENT_REPO}:`))?.image;
  if (!agentImage) throw new Error(`the pod runs no ${AGENT_REPO} image: the sandbox and volume helpers need its shell`);
  const docker = dockerfileFacts();

  const image = (name: string) => `\${${imageVariable(name)}:-${name}}`;
  const build = (name: string) =>
    name === agentImage ? { build: { context: relative(options.root ?? REPO, REPO) || '.', args: Object.fromEntries([...docker.args].map(([k, v]) => [k, `\${${k}:-${v}}`])) } } : {};
  const secret = (_name: string, key: string) => `\${${secretVariable(key)}:?set ${secretVariable(key)} in .env - see manifests/README.md}`;

  const services: Record<string, Service> = {};
  const namedVolumes: Record<string, null> = {};
  for (const ordinal of options.ordinals ?? [...Array(sts.spec.replicas).keys()]) {
    const pod = podName(sts, ordinal);
    const volumeName = (v: string) => `${pod}-${v}`;
    const podVolumes = [...claims, ...[...volumes.values()].filter((v) => 'emptyDir' in v).map((v) => v.name)];
    for (const v of podVolumes) namedVolumes[volumeName(v)] = null;

    services[pod] = {
      image: image(agentImage),
      ...build(agentImage),
      hostname: pod,
      networks: { default: { aliases: [`${pod}.${sts.spec.serviceName}`] } },
      entrypoint: ['sh', '-c', "trap 'exit 0' TERM INT; sleep infinity & wait"],
      ...(user ? { user } : {}),
      read_only: true,
    };
    // emptyDirs are world-writable; with fsGroup every volume belongs to that group (setgid).
    const prepare = podVolumes.map((v) => {
      const mode = claims.has(v) ? '2775' : ctx.fsGroup !== undefined ? '2777' : '0777';
      return `${ctx.fsGroup !== undefined ? `chgrp ${ctx.fsGroup} /volumes/${v} && ` : ''}chmod ${mode} /volumes/${v}`;
    });
    services[`${pod}-volumes`] = {
      image: image(agentImage),
      ...build(agentImage),
      user: '0:0',
      entrypoint: ['sh', '-c', prepare.join(' && ')],
      volumes: podVolumes.map((v) => `${volumeName(v)}:/volumes/${v}`),
    };

    let previous: Record<string, { condition: string }> = {
      [pod]: { condition: 'service_started' },
      [`${pod}-volumes`]: { condition: 'service_completed_successfully' },
    };
    const initNames = new Set((spec.initContainers ?? []).map((c) => c.name));
    for (const c of podContainers(spec)) {
      const isInit = initNames.has(c.name);
      const service = containerService(c, pod, { image, build, secret, volumeName, sources, volumes, claims, user, fsGroup: ctx.fsGroup });
      service.network_mode = `service:${pod}`;
      service.depends_on = previous;
      service.restart = isInit ? 'no' : 'unless-stopped';
      if (spec.terminationGracePeriodSeconds !== undefined) service.stop_grace_period = `${spec.terminationGracePeriodSeconds}s`;
      services[`${pod}-${c.name}`] = service;
      if (isInit) previous = { ...previous, [`${pod}-${c.name}`]: { condition: 'service_completed_successfully' } };
    }
  }
  return { services, volumes: namedVolumes };
}

interface ContainerContext {
  image(name: string): string;
  build(name: string): Record<string, unknown>;
  secret(name: string, key: string): string;
  volumeName(volume: string): string;
  sources: Map<string, string>;
  volumes: Map<string, { name: string; emptyDir?: unknown; configMap?: { name: string }; projected?: { sources?: { serviceAccountToken?: unknown }[] } }>;
  claims: Set<string>;
  user: string | undefined;
  fsGroup: number | undefined;
}

function containerService(c: Container, pod: string, ctx: ContainerContext): Service {
  const where = `container ${c.name}`;
  for (const field of Object.keys(c)) if (!CONTAINER_FIELDS.has(field)) throw new Error(`${where}: field ${field}: the compose rig does not reproduce it`);
  const environment = Object.fromEntries(
    Object.entries(resolveEnv(c, pod, ctx.secret)).map(([k, v]) => [k, (c.env ?? []).find((e) => e.name === k)?.value !== undefined ? escapeDollars(v) : v]),
  );
  const binds: string[] = [];
  for (const m of c.volumeMounts ?? []) {
    const volume = ctx.volumes.get(m.name);
    const ro = m.readOnly ? ':ro' : '';
    if (m.subPath) throw new Error(`${where}: mount ${m.mountPath} has a subPath: Docker volumes have none`);
    if (isTokenVolume(volume)) environment.VOLUME_CLAIMS = 'none';
    else if (ctx.claims.has(m.name) || volume?.emptyDir) binds.push(`${ctx.volumeName(m.name)}:${m.mountPath}${ro}`);
    else if (volume?.configMap) {
      const prefix = `${volume.configMap.name}/`;
      const keys = [...ctx.sources.keys()].filter((k) => k.startsWith(prefix));
      if (keys.length === 0) throw new Error(`${where}: ConfigMap ${volume.configMap.name} is not in the render`);
      for (const k of keys) binds.push(`${ctx.sources.get(k)}:${m.mountPath}/${k.slice(prefix.length)}:ro`);
    } else throw new Error(`${where}: volume ${m.name} is of a kind the compose rig does not reproduce`);
  }
  const sc = c.securityContext ?? {};
  for (const field of Object.keys(sc)) {
    if (!['readOnlyRootFilesystem', 'allowPrivilegeEscalation', 'capabilities'].includes(field)) throw new Error(`${where}: securityContext.${field}: the compose rig does not reproduce it`);
  }
  const resources = (c.resources ?? {}) as { limits?: Record<string, string> };
  for (const r of Object.keys(resources.limits ?? {})) if (r !== 'memory') throw new Error(`${where}: limits.${r}: the compose rig reproduces memory limits only`);
  return {
    image: ctx.image(c.image),
    ...ctx.build(c.image),
    ...(c.command ? { entrypoint: c.command } : {}),
    ...(c.args ? { command: c.args } : {}),
    ...(Object.keys(environment).length ? { environment } : {}),
    ...(binds.length ? { volumes: binds } : {}),
    ...(ctx.user ? { user: ctx.user } : {}),
    ...(ctx.fsGroup !== undefined ? { group_add: [String(ctx.fsGroup)] } : {}),
    ...(sc.readOnlyRootFilesystem ? { read_only: true } : {}),
    ...(sc.allowPrivilegeEscalation === false ? { security_opt: ['no-new-privileges:true'] } : {}),
    ...(sc.capabilities?.drop ? { cap_drop: sc.capabilities.drop } : {}),
    ...(resources.limits?.memory ? { mem_limit: dockerMemory(resources.limits.memory) } : {}),
  };
}

export const COMPOSE_HEADER = `# Generated from manifests/${COMPOSE_FLAVOR}'s StatefulSet by \`npm run compose\` (test/compose/compose.ts): do not edit.
# The pod of ordinals 0, 1, 2 on one machine: docker compose up -d (or docker-compose up -d).
# Secrets come from .env; images from variables defaulting to the manifests' (see manifests/README.md).
`;

/** YAML that Compose v1 (YAML 1.1: `no` is false) and v2 read alike, without anchors. */
export const composeYaml = (project: Record<string, unknown>) => stringify(project, { lineWidth: 0, aliasDuplicateObjects: false, version: '1.1' });

/** The committed docker-compose.yml's text for the current manifests. */
export async function composeFileText(docs: KubeDoc[]): Promise<string> {
  return COMPOSE_HEADER + composeYaml(await composeFromManifests(docs));
}

async function main(): Promise<void> {
  await writeFile(COMPOSE_FILE, await composeFileText(await renderFlavor(COMPOSE_FLAVOR)));
  process.stdout.write(`wrote ${relative(process.cwd(), COMPOSE_FILE)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
