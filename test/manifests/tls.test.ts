/**
 * manifests/components/tls on both flavors and the base's NetworkPolicy, offline: rendered with
 * `kubectl kustomize`, validated against the Kubernetes schemas and cert-manager's
 * (@kubernetes-models/cert-manager), the agent's own config loader run on the TLS variables with
 * files of the mounted Secret's shape, and the TLS checks (tls.ts); planted typos are caught.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Pki, createPki } from '../tls/pki.js';
import { archiveProblems, consistencyProblems, cronJobProblems, dockerfileFacts, plant, plantedProblems, schemaProblems } from './check.js';
import { FLAVORS, type Flavor, type KubeDoc, MANIFESTS, findDoc, renderFlavor } from './render.js';
import { issuerMentions, networkPolicyProblems, tlsProblems } from './tls.js';
import { readVersions } from './versions.js';

let pki: Pki;
/** Stands in for the mounted Secret: tls.crt, tls.key, ca.crt as cert-manager writes them. */
let mounted: string;
beforeAll(async () => {
  pki = await createPki();
  mounted = await pki.issue({ name: 'mysql', dns: ['*.mysql', 'mysql', 'mysql-read'] });
});
afterAll(() => pki.destroy());

/** The flavor with the component added, with `from` replaced by `to` in `file` first (if given). */
const renderWithTls = (flavor: Flavor, planted?: { file: string; from: string; to: string }) =>
  renderFlavor(flavor, async (dir) => {
    const path = join(dir, flavor, 'kustomization.yaml');
    await writeFile(path, `${await readFile(path, 'utf8')}components:\n  - ../components/tls\n`);
    if (planted) await plant(dir, planted.file, planted.from, planted.to);
  });

const problemsOf = (docs: KubeDoc[]) => [...docs.flatMap(schemaProblems), ...consistencyProblems(docs, dockerfileFacts(), readVersions(), mounted), ...tlsProblems(docs)];

describe.each(FLAVORS)('manifests/components/tls on %s', (flavor) => {
  it('renders the Certificate and passes every check, the agent accepting its TLS variables', async () => {
    const docs = await renderWithTls(flavor);
    expect(docs.filter((d) => d.kind === 'Certificate').map((d) => d.metadata.name)).toEqual(['mysql-tls']);
    expect(problemsOf(docs)).toEqual([]);
  });

  it('without files of the Secret, the agent would exit naming the missing file', async () => {
    const docs = await renderWithTls(flavor);
    expect(consistencyProblems(docs).join('\n')).toContain('TLS_DIR=/etc/mysql-agent/tls: tls.crt is missing or unreadable');
  });
});

describe('the base NetworkPolicy', () => {
  it.each(FLAVORS)('on %s: 3307 only from the pods and the backup Jobs, 3306 from the namespace', async (flavor) => {
    expect(networkPolicyProblems(await renderFlavor(flavor))).toEqual([]);
  });

  it.each([
    ['3307 from the whole namespace', "        - podSelector:\n            matchLabels:\n              app: mysql\n        - podSelector", '        - podSelector: {}\n        - podSelector', 'port 3307 is open to {"podSelector":{}}'],
    ['3307 from another namespace', "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/component: backup", '        - namespaceSelector: {}', 'port 3307 is open to {"namespaceSelector":{}}'],
    ['a rule without ports', "      ports:\n        - protocol: TCP\n          port: 3306", '', '3306 must be open'],
    ['a misspelt field', 'policyTypes:', 'policyType:', 'policyType is not a field of NetworkPolicy'],
  ])('catches %s', async (_what, from, to, expected) => {
    expect((await plantedProblems('base/network-policy.yaml', from, to)).join('\n')).toContain(expected);
  });
});

/** The flavor with the backup component and then the TLS one (or the other way round). */
const renderWithBackupsAndTls = (flavor: Flavor, order: 'backup first' | 'tls first') =>
  renderFlavor(flavor, async (dir) => {
    await writeFile(join(dir, 'components/backup/store.env'), 'aws-access-key-id=test-access-key\naws-secret-access-key=test-secret-key\n');
    const path = join(dir, flavor, 'kustomization.yaml');
    const components = order === 'backup first' ? ['backup', 'tls'] : ['tls', 'backup'];
    await writeFile(path, `${await readFile(path, 'utf8')}components:\n${components.map((c) => `  - ../components/${c}\n`).join('')}`);
  });

describe.each(FLAVORS)('manifests/components/tls with components/backup on %s', (flavor) => {
  it('gives the backup Job the Secret and TLS_DIR, and the agent accepts its config', async () => {
    const docs = await renderWithBackupsAndTls(flavor, 'backup first');
    expect([...problemsOf(docs), ...cronJobProblems(docs, mounted), ...archiveProblems(docs, mounted)]).toEqual([]);
    const job = findDoc(docs, 'CronJob', 'mysql-backup') as unknown as { spec: { jobTemplate: { spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } } } };
    expect(job.spec.jobTemplate.spec.template.spec.containers[0]!.env).toContainEqual({ name: 'TLS_DIR', value: '/etc/mysql-agent/tls' });
  });

  it('listed before the backup component, the Job would fetch in plain HTTP: the check names it', async () => {
    const docs = await renderWithBackupsAndTls(flavor, 'tls first');
    expect(tlsProblems(docs).join('\n')).toContain("CronJob/mysql-backup: backup: TLS_DIR must be the sidecar's /etc/mysql-agent/tls (it is undefined)");
  });
});

describe('a typo planted in the TLS component fails the checks', () => {
  const patch = 'components/tls/statefulset-patch.yaml';
  const cert = 'components/tls/certificate.yaml';
  it.each([
    ['a server mount elsewhere', patch, "        - name: mysql\n          volumeMounts:\n            - name: tls\n              mountPath: /etc/mysql-agent/tls", "        - name: mysql\n          volumeMounts:\n            - name: tls\n              mountPath: /etc/mysql/tls", 'mysql: the Secret mysql-tls must be mounted read-only at TLS_DIR'],
    ['a plain-HTTP probe', patch, "          readinessProbe:\n            httpGet:\n              scheme: HTTPS", "          readinessProbe:\n            httpGet:\n              scheme: HTTP", 'readinessProbe must use scheme HTTPS'],
    ['a wildcard of another Service', cert, '"*.mysql"', '"*.mysq"', 'do not cover mysql-0.mysql'],
    ['no client auth', cert, '    - client auth\n', '', 'usages must include client auth'],
    ['another Secret', cert, 'secretName: mysql-tls', 'secretName: mysql-certs', 'no volume of the Certificate\'s Secret mysql-certs'],
    ['a misspelt Certificate field', cert, 'dnsNames:', 'dnsName:', 'dnsName'],
    ['a mode the agent refuses', patch, 'value: verify-identity', 'value: verify-name', 'REPLICATION_TLS="verify-name" is invalid'],
    ['a server option of another file', 'components/tls/kustomization.yaml', '--ssl-key=/etc/mysql-agent/tls/tls.key', '--ssl-key=/etc/mysql-agent/tls/key.pem', 'the server must get --ssl-key=/etc/mysql-agent/tls/tls.key'],
  ])('%s', async (_what, file, from, to, expected) => {
    expect(problemsOf(await renderWithTls('mariadb', { file, from, to })).join('\n')).toContain(expected);
  });

  it('names the issuer in one place', async () => {
    const dir = join(MANIFESTS, 'components/tls');
    const sources = Object.fromEntries(await Promise.all((await readdir(dir)).map(async (f) => [f, await readFile(join(dir, f), 'utf8')] as const)));
    expect(issuerMentions(sources, 'mysql-ca')).toEqual(['certificate.yaml: name: mysql-ca']);
  });
});
