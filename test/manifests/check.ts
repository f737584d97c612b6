/**
 * Offline checks of a rendered flavor, each returning problems as sentences (empty = fine):
 * - schemaProblems: kubernetes-models' JSON schemas (types, required fields) plus a walk over
 *   @kubernetes/client-node's attribute maps, which the schemas lack, for unknown fields;
 * - consistencyProblems: what the StatefulSet names (images, commands, variables, mounts, ports,
 *   probes, Secret keys, accounts, user ids) against what the agent (its own config loader),
 *   the Dockerfile, the pinned images (versions.env) and the initdb script actually use.
 */
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { StatefulSet as StatefulSetModel } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import { CronJob as CronJobModel } from 'kubernetes-models/batch/v1';
import { COMMANDS, type Config } from '../../agent/commands.js';
import { loadCommand } from '../../agent/core/settings.js';
import { hostOf } from '../../agent/core/topology.js';
import type { InitConfig } from '../../agent/init/settings.js';
import type { SidecarConfig } from '../../agent/sidecar/settings.js';
import type { BackupConfig, VerifyConfig } from '../../agent/backup/settings.js';
import { SDK_VARIABLES, type StoreConfig } from '../../agent/store/settings.js';
import {
  type ConfigMapReader,
  type Container,
  type Flavor,
  type KubeDoc,
  MANIFESTS,
  REPO,
  type StatefulSet,
  type Volume,
  findDoc,
  podContainers,
  podName,
  portNumber,
  renderFlavor,
  resolveEnv,
  statefulSet,
} from './render.js';
import { type Pins, readVersions, resolvePin, toolProblem, versionsProblems } from './versions.js';
import { networkPolicyProblems } from './tls.js';

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/StatefulSet': StatefulSetModel,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/ServiceAccount': ServiceAccount,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  // components/tls; cert-manager's own schema (its CRD's types; unknown fields are not caught for it).
  'cert-manager.io/v1/Certificate': Certificate,
  'batch/v1/CronJob': CronJobModel,
};

type AttributeMap = { baseName: string; type: string }[];
const clientTypes = k8s as unknown as Record<string, { getAttributeTypeMap?: () => AttributeMap } | undefined>;

/** Fields that the API server would reject as unknown (kubernetes-models lets them through). */
function unknownFields(value: unknown, type: string, path: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const item = /^Array<(.+)>$/.exec(type);
  if (item) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, item[1]!, `${path}[${i}]`, out));
    return;
  }
  const entry = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (entry) {
    if (typeof value === 'object') for (const [k, v] of Object.entries(value)) unknownFields(v, entry[1]!, `${path}.${k}`, out);
    return;
  }
  const attributes = clientTypes[type]?.getAttributeTypeMap?.();
  // Primitives, IntOrString and free-form maps: the schema validation types them.
  if (!attributes || typeof value !== 'object' || Array.isArray(value)) return;
  const fields = new Map(attributes.map((a) => [a.baseName, a.type]));
  for (const [key, v] of Object.entries(value)) {
    const t = fields.get(key);
    if (t === undefined) out.push(`${path}.${key} is not a field of ${type.replace(/^V1/, '')}`);
    else unknownFields(v, t, `${path}.${key}`, out);
  }
}

export function schemaProblems(doc: KubeDoc): string[] {
  const where = `${doc.kind}/${doc.metadata?.name}`;
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) return [`${where}: ${doc.apiVersion} ${doc.kind} is not a kind these checks know`];
  const out: string[] = [];
  try {
    new Model(doc as never).validate();
  } catch (err) {
    out.push(`${where}: ${(err as Error).message}`);
  }
  unknownFields(doc, `V1${doc.kind}`, where, out);
  return out;
}

/** What the Dockerfile builds: entrypoint, user, and the documented `docker build` per agent tag. */
export interface DockerfileFacts {
  readonly entrypoint: string[];
  readonly user: string;
  readonly version: string;
  /** Build arguments declared before the first FROM, with their defaults (the base images). */
  readonly args: ReadonlyMap<string, string>;
  /** Agent image (name:tag) → the BASE_IMAGE it is built on, as written: an image or "$VARIABLE" of versions.env. */
  readonly builds: ReadonlyMap<string, string>;
}

export function dockerfileFacts(text = readFileSync(join(REPO, 'Dockerfile'), 'utf8')): DockerfileFacts {
  const arg = (name: string) => new RegExp(`^ARG ${name}=(\\S+)$`, 'm').exec(text)?.[1] ?? '';
  const builds = new Map<string, string>();
  for (const m of text.matchAll(/docker build (?:--build-arg BASE_IMAGE=(\S+) )?-t (\S+) \./g)) builds.set(m[2]!, m[1] ?? arg('BASE_IMAGE'));
  return {
    entrypoint: JSON.parse(/^ENTRYPOINT (.+)$/m.exec(text)?.[1] ?? '[]') as string[],
    user: [...text.matchAll(/^USER (\S+)$/gm)].at(-1)?.[1] ?? '',
    version: arg('VERSION'),
    args: new Map([...text.slice(0, text.search(/^FROM /m)).matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!])),
    builds,
  };
}

const tagOf = (image: string) => image.slice(image.lastIndexOf(':') + 1);
const repoOf = (image: string) => image.slice(0, image.lastIndexOf(':'));
export const AGENT_REPO = 'mysql-agent';
export const isAgent = (c: Container) => repoOf(c.image) === AGENT_REPO;

/**
 * The agent's own view of a container's settings, or the ConfigError it would exit with.
 * Offline, a mounted Secret's files do not exist: with `tlsStandIn` (a folder of real files of
 * the mounted shape, from the test PKI) TLS_DIR points there instead.
 */
export function agentConfig(c: Container, pod: string, secret: (name: string, key: string) => string, tlsStandIn?: string, configMap?: ConfigMapReader): Config | string {
  const command = c.args?.[0] ?? '';
  // What the kubelet adds to every container: the API's address.
  const env: Record<string, string> = { PATH: '/usr/bin', KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', ...resolveEnv(c, pod, secret, configMap) };
  if (env.TLS_DIR !== undefined && tlsStandIn !== undefined) env.TLS_DIR = tlsStandIn;
  try {
    return loadCommand(COMMANDS, { argv: [command], env, hostname: pod, isExecutable: () => true });
  } catch (err) {
    return `${c.name} on ${pod} would exit: ${(err as Error).message}`;
  }
}

/**
 * Each variable of an agent container is a documented one of its command; the AWS SDK's own
 * (credentials) only beside BACKUP_STORE_URL, where the store client reads them.
 */
function variableProblems(c: Container, where: string): string[] {
  const command = c.args?.[0] ?? '';
  const store = (c.env ?? []).some((v) => v.name === 'BACKUP_STORE_URL');
  const out: string[] = [];
  for (const v of c.env ?? []) {
    const readers = Object.values(COMMANDS).filter((spec) => spec.settings.some((x) => x.name === v.name)).map((spec) => spec.name);
    if ((SDK_VARIABLES as readonly string[]).includes(v.name)) {
      if (!store) out.push(`${where}: env ${v.name} is the AWS SDK's, used only beside BACKUP_STORE_URL`);
    } else if (readers.length === 0) out.push(`${where}: env ${v.name} is not a mysql-agent variable (see README, Configuration)`);
    else if (!readers.includes(command)) out.push(`${where}: env ${v.name} is read by ${readers.join('/')} only, not ${command}`);
  }
  return out;
}

/** Secret values of the render, decoded; a missing Secret or key is a problem, not an exception. */
function secretReader(docs: KubeDoc[], out: string[]) {
  return (name: string, key: string): string => {
    const data = (findDoc(docs, 'Secret', name) as { data?: Record<string, string> } | undefined)?.data;
    if (data?.[key] === undefined) {
      out.push(`secretKeyRef ${name}/${key}: the render has no such Secret key`);
      return '';
    }
    return Buffer.from(data[key], 'base64').toString();
  };
}

/** ConfigMap values of the render; a missing ConfigMap, or a missing key not marked optional, is a problem. */
function configMapReader(docs: KubeDoc[], out: string[]): ConfigMapReader {
  return (name, key, optional) => {
    const doc = findDoc(docs, 'ConfigMap', name) as { data?: Record<string, string> } | undefined;
    const value = doc?.data?.[key];
    if (!doc || (value === undefined && !optional)) out.push(`configMapKeyRef ${name}/${key}: the render has no such ConfigMap${doc ? ' key' : ''}`);
    return value;
  };
}

/** The Secrets the user creates from a template: name → the template under manifests/. */
const SECRET_TEMPLATES: Record<string, string> = { mysql: 'base/secret.env.example', 'mysql-backup-store': 'components/backup/store.env.example' };

export function consistencyProblems(docs: KubeDoc[], docker: DockerfileFacts = dockerfileFacts(), pins: Pins = readVersions(), tlsStandIn?: string): string[] {
  const out: string[] = [];
  const problem = (ok: boolean, text: string) => {
    if (!ok) out.push(text);
  };
  const sts: StatefulSet = statefulSet(docs);
  const spec = sts.spec.template.spec;
  const containers = podContainers(spec);
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v] as [string, Volume]));
  const claims = new Set((sts.spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name));
  const secret = secretReader(docs, out);
  const configMap = configMapReader(docs, out);
  const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  const labels = sts.spec.template.metadata.labels;
  const selects = (selector: Record<string, string> | undefined) =>
    !!selector && Object.entries(selector).every(([k, v]) => labels[k] === v);
  const mountOf = (c: Container, path: string) => c.volumeMounts?.find((m) => m.mountPath === path);

  const agents = containers.filter(isAgent);
  const init = spec.initContainers?.find((c) => isAgent(c) && c.args?.[0] === 'init');
  const sidecar = spec.containers.find((c) => isAgent(c) && c.args?.[0] === 'sidecar');
  const servers = spec.containers.filter((c) => !isAgent(c));
  const server = servers[0];
  if (!init || !sidecar || servers.length !== 1 || !server) {
    return [`the pod needs an agent init container (args [init]), an agent sidecar (args [sidecar]) and one server container; it has ${containers.map((c) => `${c.name} (${c.image})`).join(', ')}`];
  }

  // Images: agent images are ones the Dockerfile documents building, on an image pinned in
  // versions.env whose backup tool serves the server, itself pinned there.
  problem(docker.version === version, `Dockerfile ARG VERSION=${docker.version} differs from package.json ${version}`);
  problem(JSON.stringify(docker.entrypoint) === JSON.stringify([AGENT_REPO]), `Dockerfile ENTRYPOINT ${JSON.stringify(docker.entrypoint)} is not ["${AGENT_REPO}"]`);
  const pinned = new Set(pins.values());
  problem(pinned.has(server.image), `${server.name}: image ${server.image} is not one pinned in manifests/base/versions.env (${[...pinned].join(', ')})`);
  for (const c of agents) {
    const built = docker.builds.get(c.image);
    problem(built !== undefined, `${c.name}: image ${c.image} is not one the Dockerfile documents building (${[...docker.builds.keys()].join(', ')})`);
    problem(tagOf(c.image).startsWith(version), `${c.name}: image ${c.image} is not version ${version}`);
    if (built === undefined) continue;
    const base = resolvePin(built, pins);
    if (base === undefined || !pinned.has(base)) {
      out.push(`${c.name}: the Dockerfile builds ${c.image} on ${built}, which is not pinned in manifests/base/versions.env`);
      continue;
    }
    const why = toolProblem(base, server.image);
    problem(!why, `${c.name}: ${c.image} is built on ${base}, whose backup tool cannot serve the server: ${why}`);
  }
  for (const c of [init, sidecar]) problem(c.command === undefined, `${c.name}: command overrides the image's entrypoint (${AGENT_REPO}); give the subcommand in args`);
  problem(init.image === sidecar.image, `init (${init.image}) and sidecar (${sidecar.image}) must run the same agent image`);

  // Variables: documented names only, for the command that reads them, with values the agent accepts.
  for (const c of agents) out.push(...variableProblems(c, c.name));
  const podConfigs: Config[] = [];
  for (const ordinal of [0, 1]) {
    for (const c of [init, sidecar]) {
      const config = agentConfig(c, podName(sts, ordinal), secret, tlsStandIn, configMap);
      if (typeof config === 'string') out.push(config);
      else podConfigs.push(config);
    }
  }
  const initConfig = podConfigs.find((c): c is InitConfig => c.command === 'init' && c.ordinal === 1);
  const sideConfig = podConfigs.find((c): c is SidecarConfig => c.command === 'sidecar' && c.ordinal === 1);
  if (!initConfig || !sideConfig) return out;

  // Identity: pod names and peer host names the agent derives must be the ones Kubernetes gives.
  problem(initConfig.set === sts.metadata.name, `the agent derives set "${initConfig.set}" from the pod name, the StatefulSet is ${sts.metadata.name}`);
  problem(
    hostOf(initConfig.peerHosts, 0) === `${sts.metadata.name}-0.${sts.spec.serviceName}`,
    `the agent looks for peers at ${hostOf(initConfig.peerHosts, 0)}, Kubernetes names them ${sts.metadata.name}-0.${sts.spec.serviceName}`,
  );
  const headless = findDoc<KubeDoc & { spec: { clusterIP?: string; selector?: Record<string, string>; publishNotReadyAddresses?: boolean } }>(docs, 'Service', sts.spec.serviceName);
  problem(headless?.spec.clusterIP === 'None', `serviceName ${sts.spec.serviceName} must be a headless Service (clusterIP: None) in the render`);
  problem(headless?.spec.publishNotReadyAddresses === true, `Service ${sts.spec.serviceName} must publish not-ready pods: a replica reaches its donor before it is ready`);
  problem(selects(headless?.spec.selector), `Service ${sts.spec.serviceName} does not select the pods`);

  // Mounts: the directories the agent uses are volumes shared the way the pod needs them.
  const volumeOf = (c: Container, path: string, what: string) => {
    const m = mountOf(c, path);
    problem(!!m, `${c.name}: ${what} ${path} is not a volume mount`);
    return m;
  };
  // The datadir: one path, on the claim, mounted alike wherever it is used, made before init.
  const claimMount = (c: Container, path: string, what: string) => {
    const m = (c.volumeMounts ?? []).filter((v) => path === v.mountPath || path.startsWith(`${v.mountPath}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    problem(!!m && claims.has(m.name) && !m.subPath, `${c.name}: ${what} ${path} is not on a volumeClaimTemplate mounted without subPath`);
    return m;
  };
  const serverDataDir = server.args?.find((a) => a.startsWith('--datadir='))?.slice('--datadir='.length) ?? '/var/lib/mysql';
  problem(serverDataDir === initConfig.dataDir && serverDataDir === sideConfig.dataDir, `the server's datadir ${serverDataDir} (--datadir) differs from DATA_DIR of init (${initConfig.dataDir}) or sidecar (${sideConfig.dataDir})`);
  const dataMounts = [claimMount(init, initConfig.dataDir, 'DATA_DIR'), claimMount(sidecar, sideConfig.dataDir, 'DATA_DIR'), claimMount(server, serverDataDir, 'its datadir')];
  problem(
    dataMounts.every((m) => m?.name === dataMounts[0]?.name && m?.mountPath === dataMounts[0]?.mountPath),
    `init, sidecar and server must mount the datadir's volume at the same path: ${JSON.stringify(dataMounts)}`,
  );
  const initIndex = spec.initContainers?.indexOf(init) ?? 0;
  const maker = spec.initContainers?.slice(0, initIndex).find((c) => JSON.stringify(c.command) === JSON.stringify(['mkdir', '-p', initConfig.dataDir]));
  problem(!!maker && claimMount(maker, initConfig.dataDir, 'the datadir')?.mountPath === dataMounts[0]?.mountPath, `no init container before init runs mkdir -p ${initConfig.dataDir} on the same volume (the agent needs DATA_DIR to exist)`);
  const confMount = volumeOf(init, initConfig.confDir, 'CONF_DIR');
  const serverConf = volumeOf(server, '/etc/mysql/conf.d', "the server image's config directory");
  problem(!!confMount && confMount.name === serverConf?.name && 'emptyDir' in (volumes.get(confMount.name) ?? {}), `init's CONF_DIR and the server's /etc/mysql/conf.d must be one emptyDir`);
  const cmMount = volumeOf(init, initConfig.configMapDir, 'CONFIG_MAP_DIR');
  const roleConfigs = findDoc<KubeDoc & { data?: Record<string, string> }>(docs, 'ConfigMap', volumes.get(cmMount?.name ?? '')?.configMap?.name ?? '');
  for (const file of ['primary.cnf', 'replica.cnf']) problem(!!roleConfigs?.data?.[file], `the ConfigMap mounted at CONFIG_MAP_DIR has no ${file}`);
  const initdb = findDoc<KubeDoc & { data?: Record<string, string> }>(docs, 'ConfigMap', volumes.get(mountOf(server, '/docker-entrypoint-initdb.d')?.name ?? '')?.configMap?.name ?? '');
  const script = Object.values(initdb?.data ?? {}).join('\n');
  problem(script.includes('create_users'), `the server must mount the initdb ConfigMap (create-users.sh) at /docker-entrypoint-initdb.d`);
  for (const c of containers) {
    for (const m of c.volumeMounts ?? []) problem(volumes.has(m.name) || claims.has(m.name), `${c.name}: mount ${m.mountPath} names volume ${m.name}, which the pod does not have`);
    problem(c.securityContext?.readOnlyRootFilesystem === true, `${c.name}: readOnlyRootFilesystem must be true`);
    problem(c.securityContext?.allowPrivilegeEscalation === false, `${c.name}: allowPrivilegeEscalation must be false`);
  }
  for (const c of [init, sidecar, server]) problem(!!mountOf(c, '/tmp'), `${c.name}: /tmp must be a volume (the root filesystem is read-only)`);
  for (const v of volumes.keys()) problem(containers.some((c) => c.volumeMounts?.some((m) => m.name === v)), `volume ${v} is mounted nowhere`);
  for (const t of sts.spec.volumeClaimTemplates ?? []) problem(t.spec.storageClassName === undefined, `volumeClaimTemplate ${t.metadata.name} names a storageClass: leave it to the cluster's default`);

  // The API: ordinal 0's init lists the replicas' claims with the pod's service account, which
  // only init gets a token of; the claims must outlive the StatefulSet (the outage runbook deletes it).
  const primaryInit = podConfigs.find((c): c is InitConfig => c.command === 'init' && c.ordinal === 0);
  const volumeClaims = primaryInit?.volumeClaims;
  if (volumeClaims?.kind === 'kubernetes') out.push(...apiProblems(docs, sts, init, volumeClaims.template, volumeClaims.api.serviceAccountDir, dataMounts[0]?.name));

  // Ports and probes: what kubelet and the Services reach is what the agent and server listen on.
  const backupPort = sidecar.ports?.find((p) => p.containerPort === sideConfig.backup.port);
  problem(!!backupPort, `sidecar: no containerPort ${sideConfig.backup.port} (BACKUP_PORT)`);
  problem(!!server.ports?.some((p) => p.containerPort === sideConfig.mysql.port), `${server.name}: no containerPort ${sideConfig.mysql.port} (MYSQL_PORT)`);
  const httpProbe = (probe: 'readinessProbe' | 'livenessProbe', path: string) => {
    const get = sidecar[probe]?.httpGet;
    problem(get?.path === path && portNumber(sidecar, get.port) === sideConfig.backup.port, `sidecar: ${probe} must GET ${path} on ${sideConfig.backup.port}, it is ${JSON.stringify(sidecar[probe])}`);
  };
  httpProbe('readinessProbe', '/readyz');
  httpProbe('livenessProbe', '/healthz');
  for (const probe of ['startupProbe', 'livenessProbe'] as const) {
    problem(JSON.stringify(server[probe]?.exec?.command) === '["mysqladmin","ping"]', `${server.name}: ${probe} must exec mysqladmin ping`);
  }
  const startupBudget = (server.startupProbe?.periodSeconds ?? 10) * (server.startupProbe?.failureThreshold ?? 3);
  problem(startupBudget >= 600, `${server.name}: startupProbe allows ${startupBudget} s; crash recovery of a large clone needs at least 600`);
  const read = findDoc<KubeDoc & { spec: { selector?: Record<string, string>; clusterIP?: string; ports?: { port: number; targetPort?: number | string }[] } }>(docs, 'Service', 'mysql-read');
  problem(!!read && read.spec.clusterIP !== 'None' && selects(read.spec.selector), `Service mysql-read must be a ClusterIP Service selecting the pods`);
  for (const p of read?.spec.ports ?? []) problem(portNumber(server, p.targetPort ?? p.port) === sideConfig.mysql.port, `Service mysql-read port ${p.port} does not reach the server's ${sideConfig.mysql.port}`);
  const pdb = findDoc<KubeDoc & { spec: { selector?: { matchLabels?: Record<string, string> } } }>(docs, 'PodDisruptionBudget', sts.metadata.name);
  problem(selects(pdb?.spec.selector?.matchLabels), `PodDisruptionBudget ${sts.metadata.name} must select the pods`);
  problem(selects(sts.spec.selector.matchLabels), `the StatefulSet's selector does not match its pod labels`);

  // Accounts: what create-users.sh creates from the server's env is what the sidecar logs in with.
  const serverEnv = resolveEnv(server, podName(sts, 0), secret);
  problem(serverEnv.AGENT_USER === sideConfig.mysql.user && serverEnv.AGENT_PASSWORD === sideConfig.mysql.password, `server AGENT_USER/AGENT_PASSWORD differ from the sidecar's MYSQL_USER/MYSQL_PASSWORD`);
  problem(
    serverEnv.REPLICATION_USER === sideConfig.replication.user && serverEnv.REPLICATION_PASSWORD === sideConfig.replication.password,
    `server REPLICATION_USER/REPLICATION_PASSWORD differ from the sidecar's`,
  );
  problem(!!serverEnv.MYSQL_ROOT_PASSWORD, `${server.name}: MYSQL_ROOT_PASSWORD must come from the Secret, or the image refuses to initialise`);
  problem(script.includes(`@'${sideConfig.mysql.host}'`), `create-users.sh grants the agent account at another host than MYSQL_HOST ${sideConfig.mysql.host}`);
  // Each Secret the user makes from a template (only those in the render) and the keys the pod uses.
  for (const [name, template] of Object.entries(SECRET_TEMPLATES)) {
    if (!findDoc(docs, 'Secret', name)) continue;
    const templateKeys: string[] = readFileSync(join(MANIFESTS, template), 'utf8').match(/^[a-z-]+(?==)/gm) ?? [];
    const refs = containers.flatMap((c) => (c.env ?? []).flatMap((v) => (v.valueFrom?.secretKeyRef?.name === name ? [v.valueFrom.secretKeyRef.key] : [])));
    for (const key of refs) problem(templateKeys.includes(key), `Secret key ${key} is not in ${template}`);
    for (const key of templateKeys) problem(refs.includes(key), `${template} has ${key}, which no container uses`);
  }

  // Users: the pod runs as the image's user, which owns the server's datadir.
  const [uid, gid] = docker.user.split(':').map(Number);
  const ctx = spec.securityContext;
  problem(ctx?.runAsNonRoot === true && ctx.runAsUser === uid && ctx.runAsGroup === gid && ctx.fsGroup === gid, `pod securityContext must run as the image's USER ${docker.user} with fsGroup ${gid}: ${JSON.stringify(ctx)}`);

  // Who may reach the pods: 3307 only from the StatefulSet's pods and the backup Jobs.
  out.push(...networkPolicyProblems(docs));
  return out;
}

/** Replaces `from` by `to` in one file of a copied manifests tree (the anchor must be there). */
export async function plant(dir: string, file: string, from: string, to: string): Promise<void> {
  const path = join(dir, file);
  const text = await readFile(path, 'utf8');
  if (!text.includes(from)) throw new Error(`the planted text's anchor "${from}" is not in ${file}`);
  await writeFile(path, text.replace(from, to));
}

/**
 * Every problem of a flavor rendered after replacing `from` by `to` in one file under manifests/
 * (the anchor must be there): schemas, consistency, and the pins of that copy's versions.env.
 */
export async function plantedProblems(file: string, from: string, to: string, flavor: Flavor = 'mariadb'): Promise<string[]> {
  let pins: Pins = new Map();
  let docs: KubeDoc[];
  try {
    docs = await renderFlavor(flavor, async (dir) => {
      await plant(dir, file, from, to);
      pins = readVersions(join(dir, 'base/versions.env'));
    });
  } catch (err) {
    if ((err as Error).message.includes("planted text's anchor")) throw err;
    return [`render failed: ${(err as Error).message}`];
  }
  return [...docs.flatMap(schemaProblems), ...versionsProblems(pins), ...consistencyProblems(docs, dockerfileFacts(), pins)];
}

type RbacRule = { apiGroups?: string[]; resources?: string[]; verbs?: string[] };
type Projection = {
  serviceAccountToken?: { path: string };
  configMap?: { name: string; items?: { key: string; path: string }[] };
  downwardAPI?: { items?: { path: string; fieldRef?: { fieldPath: string } }[] };
};

/** The service account, its Role and the token mount that ordinal 0's init needs to read the claims. */
export function apiProblems(docs: KubeDoc[], sts: StatefulSet, init: Container, template: string, accountDir: string, dataClaim: string | undefined): string[] {
  const out: string[] = [];
  const problem = (ok: boolean, text: string) => {
    if (!ok) out.push(text);
  };
  const spec = sts.spec.template.spec;
  problem(template === dataClaim, `init's VOLUME_CLAIM_TEMPLATE ${template} is not the volumeClaimTemplate DATA_DIR is on (${dataClaim})`);
  const policy = (sts.spec as { persistentVolumeClaimRetentionPolicy?: { whenDeleted?: string } }).persistentVolumeClaimRetentionPolicy;
  problem(policy?.whenDeleted !== 'Delete', `persistentVolumeClaimRetentionPolicy.whenDeleted must not be Delete: the replicas' claims are the evidence of their data`);

  const account = spec.serviceAccountName;
  problem(!!account && !!findDoc(docs, 'ServiceAccount', account), `the pod's serviceAccountName ${account} names no ServiceAccount in the render`);
  const bindings = docs.filter(
    (d): d is KubeDoc & { roleRef: { kind: string; name: string }; subjects?: { kind: string; name: string; namespace?: string }[] } =>
      d.kind === 'RoleBinding' && ((d.subjects ?? []) as { kind: string; name: string; namespace?: string }[]).some((s) => s.kind === 'ServiceAccount' && s.name === account && s.namespace === undefined),
  );
  const rules = bindings.flatMap((b) => (b.roleRef?.kind === 'Role' ? ((findDoc(docs, 'Role', b.roleRef.name) as { rules?: RbacRule[] } | undefined)?.rules ?? []) : []));
  const grants = (verb: string) => rules.some((r) => r.apiGroups?.includes('') && r.resources?.includes('persistentvolumeclaims') && r.verbs?.includes(verb));
  problem(grants('get') && grants('list'), `no Role bound to ServiceAccount ${account} (in its own namespace) grants get and list on persistentvolumeclaims: ordinal 0 could not read the replicas' claims`);

  problem(spec.automountServiceAccountToken === false, `automountServiceAccountToken must be false: only init needs a token, through its own mount`);
  const mount = init.volumeMounts?.find((m) => m.mountPath === accountDir);
  const volume = (spec.volumes ?? []).find((v) => v.name === mount?.name) as { projected?: { sources?: Projection[] } } | undefined;
  const sources = volume?.projected?.sources ?? [];
  const has = (ok: (p: Projection) => boolean | undefined) => sources.some((p) => ok(p) === true);
  problem(
    !!mount?.readOnly &&
      has((p) => p.serviceAccountToken?.path === 'token') &&
      has((p) => p.configMap?.name === 'kube-root-ca.crt' && p.configMap.items?.some((i) => i.key === 'ca.crt' && i.path === 'ca.crt')) &&
      has((p) => p.downwardAPI?.items?.some((i) => i.path === 'namespace' && i.fieldRef?.fieldPath === 'metadata.namespace')),
    `init must mount, read-only at SERVICE_ACCOUNT_DIR ${accountDir}, a projected volume with the service account token (token), kube-root-ca.crt (ca.crt) and the namespace (namespace)`,
  );
  for (const c of podContainers(spec)) {
    if (c !== init) problem(!c.volumeMounts?.some((m) => m.name === mount?.name), `${c.name} mounts the service account token volume ${mount?.name}: only init reads the API`);
  }
  return out;
}

export interface CronJob extends KubeDoc {
  spec: { schedule: string; concurrencyPolicy?: string; jobTemplate: { spec: { template: { spec: PodSpec } } } };
}

/**
 * The backup component's CronJobs against the agent and the StatefulSet they serve: the agent
 * image the pods run, a command of the agent with only its variables (and the SDK's credentials),
 * values it accepts, peers named as Kubernetes names them, one run at a time, requests, the
 * restricted security context, and the drill's scratch directory on a volume.
 */
/** With `tlsStandIn`, TLS_DIR points at real files of the Secret's shape (agentConfig). */
export function cronJobProblems(docs: KubeDoc[], tlsStandIn?: string): string[] {
  const out: string[] = [];
  const problem = (ok: boolean, text: string) => {
    if (!ok) out.push(text);
  };
  const sts = statefulSet(docs);
  const agentImage = podContainers(sts.spec.template.spec).find(isAgent)?.image;
  const secret = secretReader(docs, out);
  const configMap = configMapReader(docs, out);
  const jobs = docs.filter((d): d is CronJob => d.kind === 'CronJob');
  problem(jobs.some((j) => j.spec.jobTemplate.spec.template.spec.containers[0]?.args?.[0] === 'backup'), 'no CronJob runs mysql-agent backup');
  problem(jobs.some((j) => j.spec.jobTemplate.spec.template.spec.containers[0]?.args?.[0] === 'verify-backup'), 'no CronJob runs mysql-agent verify-backup');
  for (const job of jobs) {
    const where = `CronJob/${job.metadata.name}`;
    const spec = job.spec.jobTemplate.spec.template.spec;
    problem(job.spec.concurrencyPolicy === 'Forbid', `${where}: concurrencyPolicy must be Forbid (one run at a time), it is ${job.spec.concurrencyPolicy}`);
    const ctx = spec.securityContext;
    problem(ctx?.runAsNonRoot === true && ctx.runAsUser === 999 && ctx.runAsGroup === 999, `${where}: the pod must run as the image's user 999:999, not root`);
    const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
    for (const c of spec.containers) {
      const command = c.args?.[0] ?? '';
      problem(c.image === agentImage, `${where}: ${c.name} runs ${c.image}, the StatefulSet's agent is ${agentImage}`);
      problem(['backup', 'verify-backup'].includes(command), `${where}: ${c.name} runs "${command}", not backup or verify-backup`);
      out.push(...variableProblems(c, where));
      const c0 = agentConfig(c, `${job.metadata.name}-28912345-x2k9p`, secret, tlsStandIn, configMap);
      if (typeof c0 === 'string') out.push(`${where}: ${c0}`);
      else if (c0.command === 'backup') {
        const b = c0 as BackupConfig;
        const host = hostOf(b.peerHosts, 0);
        problem(host === `${sts.metadata.name}-0.${sts.spec.serviceName}`, `${where}: the agent looks for ordinal 0 at ${host}, Kubernetes names it ${sts.metadata.name}-0.${sts.spec.serviceName}`);
      } else if (c0.command === 'verify-backup') {
        const drillDir = (c0 as VerifyConfig).drillDir;
        problem(!!c.volumeMounts?.some((m) => m.mountPath === drillDir && volumes.has(m.name)), `${where}: DRILL_DIR ${drillDir} is not a volume mount (the restored datadir must not land on the read-only root)`);
      }
      problem(!!c.volumeMounts?.some((m) => m.mountPath === '/tmp'), `${where}: ${c.name}: /tmp must be a volume (the root filesystem is read-only)`);
      for (const m of c.volumeMounts ?? []) problem(volumes.has(m.name), `${where}: mount ${m.mountPath} names volume ${m.name}, which the pod does not have`);
      const requests = (c.resources as { requests?: Record<string, string> } | undefined)?.requests;
      problem(!!requests?.cpu && !!requests.memory, `${where}: ${c.name} needs cpu and memory requests`);
      problem(
        c.securityContext?.readOnlyRootFilesystem === true && c.securityContext.allowPrivilegeEscalation === false && !!c.securityContext.capabilities?.drop?.includes('ALL'),
        `${where}: ${c.name} must have the restricted security context (read-only root, no privilege escalation, drop ALL)`,
      );
    }
  }
  return out;
}

const storeText = (s: StoreConfig) => `s3://${s.bucket}/${s.prefix} (endpoint ${s.endpoint ?? 'AWS'}, region ${s.region}, path-style ${s.forcePathStyle})`;
/** A container's SDK variables and where each comes from, in a stable order. */
const credentialsOf = (c: Container) =>
  (c.env ?? [])
    .filter((v) => (SDK_VARIABLES as readonly string[]).includes(v.name))
    .map((v) => `${v.name}=${JSON.stringify(v.value ?? v.valueFrom)}`)
    .sort()
    .join(', ') || 'none';

/**
 * What ordinal 0's sidecar archives, in the agent's own terms (its store and interval; null: it
 * archives nothing), or why it cannot tell (a missing key, a config the agent refuses).
 * The agent archives where a store is set and the pod's role is primary (agent/sidecar/settings.ts).
 */
export function primaryArchive(docs: KubeDoc[], tlsStandIn?: string): SidecarConfig['archive'] | string {
  const out: string[] = [];
  const sts = statefulSet(docs);
  const sidecar = sts.spec.template.spec.containers.find((c) => isAgent(c) && c.args?.[0] === 'sidecar');
  if (!sidecar) return 'the StatefulSet has no agent sidecar';
  const config = agentConfig(sidecar, podName(sts, 0), secretReader(docs, out), tlsStandIn, configMapReader(docs, out));
  if (typeof config === 'string') out.push(config);
  return out.length > 0 ? out.join('; ') : (config as SidecarConfig).archive;
}

/**
 * With the backup component: ordinal 0's sidecar archives the binary logs into the store the
 * backup Job writes to, with the same credentials: a restore to a point reads a backup and the
 * binary logs after it from one prefix. With `tlsStandIn`, as for agentConfig.
 */
export function archiveProblems(docs: KubeDoc[], tlsStandIn?: string): string[] {
  const sts = statefulSet(docs);
  const sidecar = sts.spec.template.spec.containers.find((c) => isAgent(c) && c.args?.[0] === 'sidecar');
  const job = docs
    .filter((d): d is CronJob => d.kind === 'CronJob')
    .flatMap((j) => j.spec.jobTemplate.spec.template.spec.containers)
    .find((c) => c.args?.[0] === 'backup');
  if (!sidecar || !job) return [`archiving needs the StatefulSet's sidecar and the backup CronJob; the render has ${sidecar ? '' : 'no sidecar '}${job ? '' : 'no backup CronJob'}`];
  const out: string[] = [];
  const archive = primaryArchive(docs, tlsStandIn);
  const backup = agentConfig(job, 'mysql-backup-28912345-x2k9p', secretReader(docs, out), tlsStandIn, configMapReader(docs, out));
  // Not silently fine: what keeps the configs from being read is this check's problem too.
  if (typeof archive === 'string' || typeof backup === 'string') return [...out, ...[archive, backup].filter((c): c is string => typeof c === 'string')];
  if (archive === null) {
    out.push(`sidecar on ${podName(sts, 0)} has no BACKUP_STORE_URL: the primary archives no binary logs, and a restore to a point has nothing after the last backup`);
    return out;
  }
  const store = (backup as BackupConfig).store;
  if (storeText(archive.store) !== storeText(store)) {
    out.push(`sidecar on ${podName(sts, 0)} archives to ${storeText(archive.store)}, the backup Job writes to ${storeText(store)}: a restore to a point reads both from one place`);
  }
  if (credentialsOf(sidecar) !== credentialsOf(job)) {
    out.push(`sidecar's store credentials (${credentialsOf(sidecar)}) are not the backup Job's (${credentialsOf(job)})`);
  }
  return out;
}
