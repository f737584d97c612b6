/**
 * The drop-in recipe, exactly as manifests/README.md gives it (`kubectl patch --type strategic
 * --patch-file manifests/drop-in/agent-patch.yaml`, run offline with --local) on the tutorial's
 * own StatefulSet: the result validates, the tutorial's bash containers are gone, and the agent's
 * settings, mounts and probes fit the containers and volumes the tutorial already has.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { agentConfig, apiProblems, dockerfileFacts, schemaProblems } from './check.js';
import { type Container, type KubeDoc, MANIFESTS, REPO, type StatefulSet, TEST_SECRET, findDoc } from './render.js';
import { readVersions, resolvePin, toolProblem } from './versions.js';

const execFileP = promisify(execFile);
let tutorial: KubeDoc[];
let patched: StatefulSet;
const container = (list: Container[] | undefined, name: string) => list?.find((c) => c.name === name);

beforeAll(async () => {
  tutorial = parseAllDocuments(await readFile(join(REPO, 'test/fixtures/tutorial/mysql.yaml'), 'utf8')).map((d) => d.toJS() as KubeDoc);
  const dir = await mkdtemp(join(tmpdir(), 'drop-in-'));
  try {
    await writeFile(join(dir, 'statefulset.json'), JSON.stringify(findDoc(tutorial, 'StatefulSet', 'mysql')));
    const { stdout } = await execFileP('kubectl', ['patch', '--local', '-f', join(dir, 'statefulset.json'), '--type', 'strategic', '--patch-file', join(MANIFESTS, 'drop-in/agent-patch.yaml'), '-o', 'json']);
    patched = JSON.parse(stdout) as StatefulSet;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe('the drop-in patch on the tutorial StatefulSet', () => {
  it('validates against the Kubernetes schemas', () => {
    expect(schemaProblems(patched)).toEqual([]);
  });

  it('replaces init-mysql, clone-mysql and xtrabackup by the agent and keeps the server', () => {
    const spec = patched.spec.template.spec;
    expect(spec.initContainers?.map((c) => `${c.name} ${c.args?.join(' ')}`)).toEqual(['init init']);
    expect(spec.containers.map((c) => c.name)).toEqual(['mysql', 'sidecar']);
    for (const c of [spec.initContainers![0]!, spec.containers[1]!]) expect([...dockerfileFacts().builds.keys()]).toContain(c.image);
    const original = findDoc<StatefulSet>(tutorial, 'StatefulSet', 'mysql')!.spec.template.spec.containers.find((c) => c.name === 'mysql')!;
    const server = container(spec.containers, 'mysql')!;
    expect({ image: server.image, env: server.env, livenessProbe: server.livenessProbe }).toEqual({ image: original.image, env: original.env, livenessProbe: original.livenessProbe });
    expect(server.readinessProbe).toBeUndefined();
  });

  it('runs an agent built on the pinned MariaDB image, the server release its comment and the README name', () => {
    const pins = readVersions();
    const spec = patched.spec.template.spec;
    const bases = [spec.initContainers![0]!, spec.containers[1]!].map((c) => resolvePin(dockerfileFacts().builds.get(c.image) ?? '', pins));
    expect(bases).toEqual([pins.get('MARIADB_IMAGE'), pins.get('MARIADB_IMAGE')]);
    expect(toolProblem(bases[0]!, pins.get('MARIADB_IMAGE')!)).toBeUndefined();
  });

  it('gives the agent settings it accepts and the volumes they name', () => {
    const spec = patched.spec.template.spec;
    const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
    const cm = findDoc<KubeDoc & { data: Record<string, string> }>(tutorial, 'ConfigMap', volumes.get('config-map')?.configMap?.name ?? '');
    const server = container(spec.containers, 'mysql')!;
    const serverData = server.volumeMounts?.find((m) => m.mountPath === '/var/lib/mysql');
    for (const [name, list] of [['init', spec.initContainers], ['sidecar', spec.containers]] as const) {
      const c = container(list, name)!;
      const config = agentConfig(c, 'mysql-1', (secret, key) => (secret === 'mysql' ? TEST_SECRET[key] ?? '' : ''));
      if (typeof config === 'string') throw new Error(config);
      const mount = (path: string) => c.volumeMounts?.find((m) => m.mountPath === path);
      expect(mount(config.dataDir), `${name} DATA_DIR`).toEqual(serverData);
      if (name === 'init') {
        expect(mount(config.confDir)?.name).toBe('conf');
        expect(mount(config.configMapDir)?.name).toBe('config-map');
        expect(Object.keys(cm!.data)).toEqual(['master.cnf', 'slave.cnf']);
      } else {
        expect(c.ports).toEqual([{ name: 'backup', containerPort: config.backup.port }]);
        expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'backup' });
        expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'backup' });
      }
    }
    expect(server.volumeMounts?.find((m) => m.mountPath === '/etc/mysql/conf.d')?.name).toBe('conf');
  });

  it("lets ordinal 0's init, alone, read the replicas' claims with base/rbac.yaml's account", async () => {
    const rbac = parseAllDocuments(await readFile(join(MANIFESTS, 'base/rbac.yaml'), 'utf8')).map((d) => d.toJS() as KubeDoc);
    for (const doc of rbac) expect(schemaProblems(doc)).toEqual([]);
    const init = container(patched.spec.template.spec.initContainers, 'init')!;
    const config = agentConfig(init, 'mysql-0', (secret, key) => (secret === 'mysql' ? TEST_SECRET[key] ?? '' : ''));
    if (typeof config === 'string') throw new Error(config);
    if (config.command !== 'init' || config.volumeClaims?.kind !== 'kubernetes') throw new Error('init at ordinal 0 should read the claims');
    expect(apiProblems([...rbac, patched], patched, init, config.volumeClaims.template, config.volumeClaims.api.serviceAccountDir, 'data')).toEqual([]);
  });
});
