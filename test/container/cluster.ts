/**
 * The container tier's cluster: the agent image built from the Dockerfile on the offline
 * stand-ins of its base images, and the StatefulSet's pods run in Docker through the compose
 * rig generated from the rendered manifests, with the kubelet's remaining part — probes and
 * the endpoints of the mysql-read Service — played here from the pod template itself.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { composeFromManifests, composeYaml, imageVariable, secretVariable } from '../compose/compose.js';
import { dockerfileFacts, isAgent } from '../manifests/check.js';
import { type Container, type KubeDoc, type Probe, REPO, type StatefulSet, TEST_SECRET, podContainers, podName, portNumber, statefulSet } from '../manifests/render.js';

// Ryuk's image cannot be pulled here; every resource is removed by the tests' own teardown.
process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
const { DockerComposeEnvironment, GenericContainer } = await import('testcontainers');

const execFileP = promisify(execFile);

export async function docker(args: string[], timeoutMs = 60_000, env?: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await execFileP('docker', args, { timeout: timeoutMs, maxBuffer: 64 << 20, env });
  return stdout.trim();
}

/** Fails with the reason and the fix when no Docker engine answers: this tier never passes by not running. */
export async function requireDocker(): Promise<void> {
  try {
    await docker(['info', '--format', '{{.ServerVersion}}'], 20_000);
  } catch (err) {
    const detail = ((err as { stderr?: string }).stderr || (err as Error).message).trim().split('\n').at(-1);
    throw new Error(`the container tests need a Docker engine and none answers (${detail}): run test/ensure-docker.sh as root`);
  }
}

/** The stand-in of each public image, from the tags image/standins.sh prints (mysql-agent-standin/<image>). */
export class Standins {
  constructor(private readonly tags: readonly string[]) {}

  /** The stand-in of `image`; none is a failure naming what the script made, never the public image. */
  of(image: string): string {
    const tag = this.tags.find((t) => t.slice(t.indexOf('/') + 1) === image);
    if (!tag) throw new Error(`image/standins.sh makes no stand-in of ${image} (it made ${this.tags.join(', ')}): the Dockerfile and the manifests name images the tests cannot run`);
    return tag;
  }
}

/** Makes (or reuses) the stand-ins of the public base images. */
export async function buildStandins(): Promise<Standins> {
  const { stdout } = await execFileP('bash', [join(REPO, 'image/standins.sh')], { timeout: 15 * 60_000, maxBuffer: 16 << 20 });
  return new Standins(stdout.split('\n').filter(Boolean));
}

/** `docker build .` with the stand-ins of its default base images, through testcontainers. */
export async function buildAgentImage(tag: string, standins: Standins): Promise<void> {
  const { args } = dockerfileFacts();
  await GenericContainer.fromDockerfile(REPO)
    .withBuildArgs({ NODE_IMAGE: standins.of(args.get('NODE_IMAGE') ?? ''), BASE_IMAGE: standins.of(args.get('BASE_IMAGE') ?? '') })
    .build(tag, { deleteOnExit: false });
}

export class Cluster {
  readonly project = `mysql-agent-ct-${randomBytes(4).toString('hex')}`;
  /** The compose variables: images pointed at what was built here, Secret keys at test values. */
  readonly env: Record<string, string>;
  readonly sts: StatefulSet;
  private dir = '';

  constructor(
    readonly docs: KubeDoc[],
    agentImage: string,
    standins: Standins,
    /** Ordinals laid out in the compose file; `up` starts some of them. */
    readonly ordinals: readonly number[],
  ) {
    this.sts = statefulSet(docs);
    const images = new Map(podContainers(this.sts.spec.template.spec).map((c) => [c.image, isAgent(c) ? agentImage : standins.of(c.image)]));
    this.env = {
      ...Object.fromEntries([...images].map(([image, local]) => [imageVariable(image), local])),
      ...Object.fromEntries(Object.entries(TEST_SECRET).map(([k, v]) => [secretVariable(k), v])),
    };
  }

  get file(): string {
    return join(this.dir, 'docker-compose.yml');
  }

  /** Services of one pod, in start order: sandbox, volumes, init containers, containers. */
  services(ordinal: number): string[] {
    const pod = podName(this.sts, ordinal);
    return [pod, `${pod}-volumes`, ...podContainers(this.sts.spec.template.spec).map((c) => `${pod}-${c.name}`)];
  }

  /** Writes the compose file for the current manifests and starts the pods of `ordinals`. */
  async up(ordinals: readonly number[]): Promise<void> {
    if (!this.dir) {
      this.dir = await mkdtemp(join(tmpdir(), 'mysql-agent-compose-'));
      await writeFile(this.file, composeYaml(await composeFromManifests(this.docs, { ordinals: this.ordinals, root: this.dir })));
    }
    await new DockerComposeEnvironment(this.dir, 'docker-compose.yml')
      .withProjectName(this.project)
      .withEnvironment(this.env)
      .withStartupTimeout(30_000)
      .up(ordinals.flatMap((n) => this.services(n)));
  }

  /** `docker compose <args>` on this project (the v2 syntax; v1 through the CLI plugin shim). */
  compose(args: string[], timeoutMs = 180_000): Promise<string> {
    return docker(['compose', '-p', this.project, '-f', this.file, ...args], timeoutMs, { ...process.env, ...this.env });
  }

  async down(): Promise<void> {
    if (this.dir) await this.compose(['down', '-v', '-t', '10']).catch(() => undefined);
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  /** Container id of a pod's container (or of its sandbox when `container` is omitted). */
  async containerId(ordinal: number, container?: string): Promise<string> {
    const service = container ? `${podName(this.sts, ordinal)}-${container}` : podName(this.sts, ordinal);
    const id = await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${this.project}`, '--filter', `label=com.docker.compose.service=${service}`]);
    if (!id) throw new Error(`no container for service ${service}`);
    return id.split('\n')[0]!;
  }

  /** The pod IP: the sandbox's address on the project network. */
  async ip(ordinal: number): Promise<string> {
    return docker(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', await this.containerId(ordinal)]);
  }

  /** A container's log lines (pino JSON parsed; other lines dropped), optionally since a time. */
  async agentLog(ordinal: number, container: string, since?: string): Promise<Record<string, unknown>[]> {
    const id = await this.containerId(ordinal, container);
    const { stdout } = await execFileP('docker', ['logs', ...(since ? ['--since', since] : []), id], { maxBuffer: 64 << 20 });
    return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  container(name: string): Container {
    const c = podContainers(this.sts.spec.template.spec).find((x) => x.name === name);
    if (!c) throw new Error(`the pod template has no container ${name}`);
    return c;
  }

  /** Runs a probe of the pod template the way the kubelet does: true when it succeeds. */
  async probe(ordinal: number, container: Container, probe: Probe | undefined): Promise<boolean> {
    if (!probe) return true;
    const timeoutMs = ((probe.timeoutSeconds as number | undefined) ?? 1) * 1000;
    if (probe.httpGet) {
      const port = portNumber(container, probe.httpGet.port);
      try {
        const res = await fetch(`http://${await this.ip(ordinal)}:${port}${probe.httpGet.path}`, { signal: AbortSignal.timeout(timeoutMs) });
        return res.status >= 200 && res.status < 400;
      } catch {
        return false;
      }
    }
    if (probe.exec) {
      try {
        await docker(['exec', await this.containerId(ordinal, container.name), ...probe.exec.command], timeoutMs);
        return true;
      } catch {
        return false;
      }
    }
    throw new Error(`probe kind the container tests do not run: ${JSON.stringify(probe)}`);
  }

  /** Ready as Kubernetes counts it: every container running and passing its readiness probe. */
  async ready(ordinal: number): Promise<boolean> {
    for (const c of this.sts.spec.template.spec.containers) {
      const running = await this.containerId(ordinal, c.name)
        .then((id) => docker(['inspect', '-f', '{{.State.Running}}', id]))
        .catch(() => 'not created');
      if (running !== 'true' || !(await this.probe(ordinal, c, c.readinessProbe))) return false;
    }
    return true;
  }

  /** The endpoints of mysql-read: the pods (of those started) that are ready. */
  async readPath(ordinals: readonly number[]): Promise<number[]> {
    const ready = await Promise.all(ordinals.map((n) => this.ready(n)));
    return ordinals.filter((_, i) => ready[i]);
  }

  /** SQL as root over the pod network, like a client of the Services. */
  async sql<T = Record<string, unknown>>(ordinal: number, query: string, values: unknown[] = []): Promise<T[]> {
    const c = await mysql.createConnection({ host: await this.ip(ordinal), user: 'root', password: TEST_SECRET['root-password'] });
    try {
      const [rows] = await c.query(query, values);
      return (Array.isArray(rows) ? rows : []) as T[];
    } finally {
      await c.end();
    }
  }

  /** Connects with the given account over the pod network; the error message when refused. */
  async loginError(ordinal: number, user: string, password: string): Promise<string | null> {
    try {
      const c = await mysql.createConnection({ host: await this.ip(ordinal), user, password, connectTimeout: 5000 });
      await c.end();
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }
}
