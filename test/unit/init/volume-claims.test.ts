/**
 * The replicas' volume claims: the pure reading of a claim list (verbatim-shaped API answers in
 * test/fixtures/kubernetes/), and the HTTPS edge against a real TLS server on loopback whose
 * certificate an openssl-made CA signed, with the service account files a pod would have.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type KubernetesApi, claimName, listClaims, parseClaimList, readClaimEvidence } from '../../../agent/init/volume-claims.js';
import { type KubeApi, NAMESPACE, TOKEN, fixture, startKubeApi } from './kube-api.js';

let kube: KubeApi;
let api: KubernetesApi;

beforeAll(async () => {
  kube = await startKubeApi();
  api = { host: kube.host, port: kube.port, serviceAccountDir: kube.serviceAccountDir };
});

afterAll(async () => {
  await kube?.close();
});

beforeEach(() => {
  kube.requests.length = 0;
  kube.answer = { status: 200, body: fixture('pvc-list-full-outage') };
});

/** A copy of the service account directory with one file changed (or removed, with null). */
async function serviceAccountWith(file: string, content: string | null): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sa-'));
  await cp(kube.serviceAccountDir, dir, { recursive: true });
  if (content === null) await rm(join(dir, file));
  else await writeFile(join(dir, file), content);
  return dir;
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => '',
    (e: unknown) => (e as Error).message,
  );

describe('parseClaimList', () => {
  it("keeps the replicas' claims of this set and template, ordinal 0 and never-bound claims left out", () => {
    expect(parseClaimList(fixture('pvc-list-full-outage'), 'data', 'mysql').map((c) => c.name)).toEqual(['data-mysql-1', 'data-mysql-2']);
    expect(parseClaimList(fixture('pvc-list-full-outage'), 'logs', 'mysql')).toEqual([{ ordinal: 1, name: 'logs-mysql-1', phase: 'Bound' }]);
    expect(parseClaimList(fixture('pvc-list-full-outage'), 'data', 'mysql-analytics')).toEqual([]);
    expect(parseClaimList(fixture('pvc-list-pending-claim'), 'data', 'mysql').map((c) => c.ordinal)).toEqual([1, 2]);
    expect(claimName('data', 'mysql', 3)).toBe('data-mysql-3');
  });

  it('takes the set name literally (a dot is not a wildcard)', () => {
    const list = { kind: 'PersistentVolumeClaimList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: [{ metadata: { name: 'data-dbXa-1' }, spec: { volumeName: 'pv-1' }, status: { phase: 'Bound' } }] };
    expect(parseClaimList(list, 'data', 'db.a')).toEqual([]);
  });

  it('refuses what is not a complete claim list', () => {
    expect(() => parseClaimList(fixture('status-forbidden'), 'data', 'mysql')).toThrow('not a PersistentVolumeClaimList');
    const paged = { ...(fixture('pvc-list-new-cluster') as object), metadata: { resourceVersion: '5', continue: 'eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ' } };
    expect(() => parseClaimList(paged, 'data', 'mysql')).toThrow('incomplete');
  });
});

describe('listClaims, over HTTPS', () => {
  it("GETs the namespace's claims with the service account's token, checking the API's certificate against its ca.crt", async () => {
    expect(await listClaims(api, 2000)).toEqual(fixture('pvc-list-full-outage'));
    expect(kube.requests).toEqual([{ path: `/api/v1/namespaces/${NAMESPACE}/persistentvolumeclaims`, authorization: `Bearer ${TOKEN}` }]);
  });

  it("names the API's own reason for a refusal, and never the token", async () => {
    kube.answer = { status: 403, body: fixture('status-forbidden') };
    const forbidden = await failure(listClaims(api, 2000));
    expect(forbidden).toBe(`the Kubernetes API answered HTTP 403: ${(fixture('status-forbidden') as { message: string }).message}`);
    kube.answer = { status: 401, body: fixture('status-unauthorized') };
    expect(await failure(listClaims(api, 2000))).toBe('the Kubernetes API answered HTTP 401: Unauthorized');
    kube.answer = { status: 502, body: '<html>bad gateway</html>' };
    expect(await failure(listClaims(api, 2000))).toBe('the Kubernetes API answered HTTP 502');
    kube.answer = { status: 200, body: 'not json' };
    expect(await failure(listClaims(api, 2000))).toBe('the Kubernetes API answered something that is not JSON');
    expect(forbidden).not.toContain(TOKEN);
  });

  it('refuses a server whose certificate its ca.crt did not sign, or that is not the address asked', async () => {
    const otherCa = await serviceAccountWith('ca.crt', await readFile(kube.otherCa, 'utf8'));
    try {
      expect(await failure(listClaims({ ...api, serviceAccountDir: otherCa }, 2000))).toMatch(/unable to verify the first certificate|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    } finally {
      await rm(otherCa, { recursive: true, force: true });
    }
    expect(await failure(listClaims({ ...api, host: 'localhost' }, 2000))).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(kube.requests).toEqual([]);
  });

  it('says which service account file is missing or wrong', async () => {
    const noToken = await serviceAccountWith('token', null);
    const badNamespace = await serviceAccountWith('namespace', '../../nodes');
    try {
      expect(await failure(listClaims({ ...api, serviceAccountDir: noToken }, 2000))).toBe(
        `cannot read the service account's token in ${noToken} (ENOENT): is a service account token mounted into the init container?`,
      );
      expect(await failure(listClaims({ ...api, serviceAccountDir: badNamespace }, 2000))).toContain('does not hold a namespace name');
      expect(kube.requests).toEqual([]);
    } finally {
      await rm(noToken, { recursive: true, force: true });
      await rm(badNamespace, { recursive: true, force: true });
    }
  });

  it('gives up on an API that does not answer in time', async () => {
    kube.answer = { status: 200, body: fixture('pvc-list-new-cluster'), delayMs: 1500 };
    const started = Date.now();
    expect(await failure(listClaims(api, 300))).toBe('the Kubernetes API did not answer within 0.3 s');
    expect(Date.now() - started).toBeLessThan(1200);
    expect(await failure(listClaims({ ...api, port: 1 }, 2000))).toContain('ECONNREFUSED');
  });
});

describe('readClaimEvidence', () => {
  it('is the claims when the API answers, and unreadable with the reason when it does not; never rejects', async () => {
    expect(await readClaimEvidence(api, 'data', 'mysql', 2000)).toEqual({
      source: 'kubernetes',
      claims: [
        { ordinal: 1, name: 'data-mysql-1', phase: 'Bound' },
        { ordinal: 2, name: 'data-mysql-2', phase: 'Bound' },
      ],
    });
    kube.answer = { status: 403, body: fixture('status-forbidden') };
    expect(await readClaimEvidence(api, 'data', 'mysql', 2000)).toMatchObject({ source: 'unreadable', error: expect.stringContaining('HTTP 403') });
    kube.answer = { status: 200, body: fixture('status-forbidden') };
    expect(await readClaimEvidence(api, 'data', 'mysql', 2000)).toEqual({ source: 'unreadable', error: 'the answer is not a PersistentVolumeClaimList' });
  });
});
