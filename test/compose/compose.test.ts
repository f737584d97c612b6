/**
 * The compose rig is the StatefulSet's pod template and nothing else: the committed file is
 * what the generator makes of the current manifests, both Compose CLIs read it, and a pod field
 * the rig cannot reproduce stops the generator instead of being dropped. (Running it is the
 * container tier's job.)
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO, TEST_SECRET, renderFlavor, statefulSet } from '../manifests/render.js';
import { COMPOSE_FILE, COMPOSE_FLAVOR, composeFileText, composeFromManifests, secretVariable } from './compose.js';

const execFileP = promisify(execFile);
const secrets = Object.fromEntries(Object.entries(TEST_SECRET).map(([k, v]) => [secretVariable(k), v]));

describe('docker-compose.yml', () => {
  it('is what `npm run compose` makes of the current manifests', async () => {
    const expected = await composeFileText(await renderFlavor(COMPOSE_FLAVOR));
    expect(await readFile(COMPOSE_FILE, 'utf8'), 'docker-compose.yml is stale: run `npm run compose`').toBe(expected);
  });

  it.each([
    ['docker-compose', 'docker-compose', []],
    ['docker compose', 'docker', ['compose']],
  ])('is read by `%s config`, and names a missing secret', async (_cli, bin, pre) => {
    const run = (env: NodeJS.ProcessEnv) => execFileP(bin, [...pre, '-f', COMPOSE_FILE, 'config', '-q'], { cwd: REPO, env });
    await run({ PATH: process.env.PATH, ...secrets });
    const { BACKUP_TOKEN: _, ...withoutToken } = secrets;
    await expect(run({ PATH: process.env.PATH, ...withoutToken })).rejects.toMatchObject({ stderr: expect.stringContaining('set BACKUP_TOKEN in .env') });
  });
});

describe('the generator', () => {
  it("tells init there is no Kubernetes API (VOLUME_CLAIMS=none) instead of binding the pod's token volume", async () => {
    const project = (await composeFromManifests(await renderFlavor(COMPOSE_FLAVOR))) as { services: Record<string, { environment?: Record<string, string>; volumes?: string[] }> };
    for (const pod of ['mysql-0', 'mysql-1', 'mysql-2']) {
      expect(project.services[`${pod}-init`]?.environment?.VOLUME_CLAIMS, pod).toBe('none');
      for (const [name, service] of Object.entries(project.services)) {
        expect(service.volumes?.some((v) => v.includes('serviceaccount')) ?? false, name).toBe(false);
        if (!name.endsWith('-init')) expect(service.environment?.VOLUME_CLAIMS, name).toBeUndefined();
      }
    }
  });

  it.each([
    ['a pod field', (spec: Record<string, unknown>) => (spec.hostNetwork = true), 'pod field hostNetwork'],
    ['a container field', (spec: Record<string, any>) => (spec.containers[0].workingDir = '/x'), 'field workingDir'],
    ['an env source', (spec: Record<string, any>) => spec.containers[0].env.push({ name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }), 'env IP has a source'],
    ['a volume kind', (spec: Record<string, any>) => (spec.volumes[0] = { name: spec.volumes[0].name, hostPath: { path: '/x' } }), 'volume config-map is of a kind'],
  ])('refuses %s the rig cannot reproduce', async (_what, plant, message) => {
    const docs = await renderFlavor(COMPOSE_FLAVOR);
    plant(statefulSet(docs).spec.template.spec as Record<string, unknown>);
    await expect(composeFromManifests(docs)).rejects.toThrow(message);
  });
});
