/**
 * The manifests, offline: every flavor renders with `kubectl kustomize`, validates against the
 * Kubernetes schemas (unknown fields included), and agrees with the agent and the Dockerfile.
 * A typo planted in the sources must be caught.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { consistencyProblems, plantedProblems, schemaProblems } from './check.js';
import { FLAVORS, type KubeDoc, renderFlavor, statefulSet } from './render.js';

const problemsOf = (docs: KubeDoc[]) => [...docs.flatMap(schemaProblems), ...consistencyProblems(docs)];

describe.each(FLAVORS)('manifests/%s', (flavor) => {
  it('renders the ConfigMaps, Secret, both Services, the StatefulSet, the PodDisruptionBudget and the pods\' account with its Role', async () => {
    const docs = await renderFlavor(flavor);
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual([
      'ConfigMap/mysql',
      'ConfigMap/mysql-initdb',
      'NetworkPolicy/mysql',
      'PodDisruptionBudget/mysql',
      'Role/mysql-agent',
      'RoleBinding/mysql-agent',
      'Secret/mysql',
      'Service/mysql',
      'Service/mysql-read',
      'ServiceAccount/mysql',
      'StatefulSet/mysql',
    ]);
  });

  it('validates against the Kubernetes schemas and agrees with the agent and the Dockerfile', async () => {
    expect(problemsOf(await renderFlavor(flavor))).toEqual([]);
  });
});

describe.each(FLAVORS)('manifests/outage-recovery on %s', (flavor) => {
  it('starts every pod at once with init told to recover, and passes every check', async () => {
    const docs = await renderFlavor('outage-recovery', async (dir) => {
      const path = join(dir, 'outage-recovery/kustomization.yaml');
      await writeFile(path, (await readFile(path, 'utf8')).replace('- ../mariadb', `- ../${flavor}`));
    });
    expect(problemsOf(docs)).toEqual([]);
    const sts = statefulSet(docs);
    expect(sts.spec).toMatchObject({ podManagementPolicy: 'Parallel' });
    const init = sts.spec.template.spec.initContainers!.find((c) => c.name === 'init')!;
    expect(init.env).toContainEqual({ name: 'PRIMARY_EMPTY_START', value: 'recover' });
    // Everything else is the flavor's own.
    const plain = statefulSet(await renderFlavor(flavor));
    expect(init.env?.filter((e) => e.name !== 'PRIMARY_EMPTY_START')).toEqual(plain.spec.template.spec.initContainers!.find((c) => c.name === 'init')!.env);
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual((await renderFlavor(flavor)).map((d) => `${d.kind}/${d.metadata.name}`).sort());
  });
});

describe('a typo planted in the manifests fails the checks', () => {
  const sts = 'base/statefulset.yaml';
  it.each([
    ['a misspelt field', sts, 'volumeMounts:\n            - name: data\n              mountPath: /var/lib/mysql\n            - name: conf\n              mountPath: /etc/mysql/conf.d\n            - name: tmp', 'volumeMount:\n            - name: data\n              mountPath: /var/lib/mysql\n            - name: conf\n              mountPath: /etc/mysql/conf.d\n            - name: tmp', 'volumeMount is not a field of Container'],
    ['a misspelt StatefulSet field', sts, 'serviceName: mysql', 'serviceNme: mysql', 'serviceNme is not a field'],
    ['a wrong type', sts, 'containerPort: 3307', 'containerPort: "3307"', 'must be integer'],
    ['an unknown agent variable', sts, '- name: BACKUP_TOKEN\n              valueFrom', '- name: BACKUP_TOKN\n              valueFrom', 'BACKUP_TOKN is not a mysql-agent variable'],
    ['store credentials without a store', sts, '- name: BACKUP_TOKEN\n              valueFrom', '- name: AWS_SECRET_ACCESS_KEY\n              value: in-the-clear\n            - name: BACKUP_TOKEN\n              valueFrom', "env AWS_SECRET_ACCESS_KEY is the AWS SDK's, used only beside BACKUP_STORE_URL"],
    ['a variable the agent refuses', sts, 'value: "3307"', 'value: "33o7"', 'BACKUP_PORT="33o7" is invalid'],
    ['a port the agent does not listen on', sts, 'value: "3307"', 'value: "3308"', 'no containerPort 3308'],
    ['a datadir that is not the volume', sts, 'name: DATA_DIR\n              value: /var/lib/mysql/data', 'name: DATA_DIR\n              value: /var/lib/mysq/data', 'DATA_DIR /var/lib/mysq/data is not on a volumeClaimTemplate'],
    ['a datadir the server does not use', sts, 'args: ["--datadir=/var/lib/mysql/data"]', 'args: ["--datadir=/var/lib/mysql/dat"]', "the server's datadir /var/lib/mysql/dat (--datadir) differs"],
    ['a datadir nobody makes', sts, 'command: ["mkdir", "-p", "/var/lib/mysql/data"]', 'command: ["mkdir", "-p", "/var/lib/mysql/date"]', 'no init container before init runs mkdir -p /var/lib/mysql/data'],
    ['the tutorial\'s conf mount', sts, 'mountPath: /etc/mysql/conf.d\n            - name: initdb', 'mountPath: /mnt/conf.d\n            - name: initdb', "config directory /etc/mysql/conf.d is not a volume mount"],
    ['a readiness path the agent does not serve', sts, 'path: /readyz', 'path: /ready', 'readinessProbe must GET /readyz'],
    ['a Secret key that does not exist', sts, 'key: backup-token', 'key: backup-tokn', 'backup-tokn'],
    ['an agent image the Dockerfile does not build', 'mariadb/kustomization.yaml', 'newTag: 0.1.0', 'newTag: 0.1.1', 'not one the Dockerfile documents building'],
    ['an account the sidecar does not use', sts, '- name: AGENT_USER\n              value: agent', '- name: AGENT_USER\n              value: agnet', 'AGENT_USER/AGENT_PASSWORD differ'],
    ['a pod user other than the image\'s', sts, 'runAsUser: 999', 'runAsUser: 1000', "run as the image's USER 999:999"],
    ['a Role that cannot list claims', 'base/rbac.yaml', 'verbs: ["get", "list"]', 'verbs: ["get"]', 'grants get and list on persistentvolumeclaims'],
    ['a Role on another resource', 'base/rbac.yaml', 'resources: ["persistentvolumeclaims"]', 'resources: ["persistentvolumes"]', 'grants get and list on persistentvolumeclaims'],
    ['a binding to another account', 'base/rbac.yaml', 'kind: ServiceAccount\n    name: mysql', 'kind: ServiceAccount\n    name: default', 'no Role bound to ServiceAccount mysql'],
    ['a misspelt RBAC field', 'base/rbac.yaml', 'roleRef:', 'roleRefs:', 'roleRefs is not a field of RoleBinding'],
    ['a service account that does not exist', sts, 'serviceAccountName: mysql', 'serviceAccountName: mysql-agent', 'serviceAccountName mysql-agent names no ServiceAccount'],
    ['the token in every container', sts, 'automountServiceAccountToken: false', 'automountServiceAccountToken: true', 'automountServiceAccountToken must be false'],
    ['no token for init', sts, 'mountPath: /var/run/secrets/kubernetes.io/serviceaccount', 'mountPath: /var/run/secrets/kubernetes.io/sa', 'init must mount, read-only at SERVICE_ACCOUNT_DIR'],
    ['a token without the API\'s CA', sts, 'name: kube-root-ca.crt', 'name: kube-root-ca', 'init must mount, read-only at SERVICE_ACCOUNT_DIR'],
    ['claims deleted with the StatefulSet', sts, '  volumeClaimTemplates:', '  persistentVolumeClaimRetentionPolicy:\n    whenDeleted: Delete\n  volumeClaimTemplates:', 'whenDeleted must not be Delete'],
    ['a policy that restricts egress', 'base/network-policy.yaml', 'policyTypes: ["Ingress"]', 'policyTypes: ["Ingress", "Egress"]', 'restricts egress: the sidecar and the backup Jobs reach the object store and DNS'],
    ['claims of another template', sts, 'value: /var/lib/mysql/data\n            - name: BACKUP_TOKEN', 'value: /var/lib/mysql/data\n            - name: VOLUME_CLAIM_TEMPLATE\n              value: mysql-data\n            - name: BACKUP_TOKEN', "VOLUME_CLAIM_TEMPLATE mysql-data is not the volumeClaimTemplate DATA_DIR is on (data)"],
  ])('%s', async (_what, file, from, to, expected) => {
    const problems = await plantedProblems(file, from, to);
    expect(problems.join('\n')).toContain(expected);
  });
});
