/**
 * manifests/components/backup/ in both flavors, offline: rendered with the flavor, schema-checked
 * (CronJob included, unknown fields too), and checked against the agent; planted typos fail.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { archiveProblems, consistencyProblems, cronJobProblems, schemaProblems } from './check.js';
import { FLAVORS, type Flavor, type KubeDoc, renderFlavor } from './render.js';

const COMPONENT = 'components/backup';
/** Renders a flavor with the component included and a throw-away store.env; `from` → `to` in `file` first. */
async function renderWithBackups(flavor: Flavor, typo?: { file: string; from: string; to: string }): Promise<KubeDoc[]> {
  return renderFlavor(flavor, async (dir) => {
    await writeFile(join(dir, COMPONENT, 'store.env'), 'aws-access-key-id=test-access-key\naws-secret-access-key=test-secret-key\n');
    const k = join(dir, flavor, 'kustomization.yaml');
    await writeFile(k, `${await readFile(k, 'utf8')}components:\n  - ../${COMPONENT}\n`);
    if (typo) {
      const path = join(dir, typo.file);
      const text = await readFile(path, 'utf8');
      if (!text.includes(typo.from)) throw new Error(`the typo's anchor "${typo.from}" is not in ${typo.file}`);
      await writeFile(path, text.replace(typo.from, typo.to));
    }
  });
}
const problemsOf = (docs: KubeDoc[]) => [...docs.flatMap(schemaProblems), ...consistencyProblems(docs), ...cronJobProblems(docs), ...archiveProblems(docs)];

describe.each(FLAVORS)('manifests/%s with components/backup', (flavor) => {
  it('adds the two CronJobs, the store Secret and the store settings (name hashed: a change rolls the pods) to the flavor', async () => {
    const docs = await renderWithBackups(flavor);
    const added = docs.map((d) => `${d.kind}/${d.metadata.name}`).filter((n) => /CronJob|backup-store/.test(n));
    expect(added.sort()).toEqual([expect.stringMatching(/^ConfigMap\/mysql-backup-store-settings-[a-z0-9]{10}$/), 'CronJob/mysql-backup', 'CronJob/mysql-verify-backup', 'Secret/mysql-backup-store']);
    const schedules = docs.filter((d) => d.kind === 'CronJob').map((d) => (d as unknown as { spec: { schedule: string } }).spec.schedule);
    expect(schedules).toEqual(['17 3 * * *', '47 4 * * 0']);
  });
  it('validates against the schemas and agrees with the agent and the StatefulSet', async () => {
    expect(problemsOf(await renderWithBackups(flavor))).toEqual([]);
  });
});

describe('a typo planted in the backup component fails the checks', () => {
  const jobs = `${COMPONENT}/cronjobs.yaml`;
  it.each([
    ['a misspelt CronJob field', 'concurrencyPolicy: Forbid\n  startingDeadlineSeconds: 3600\n  successfulJobsHistoryLimit: 3\n  failedJobsHistoryLimit: 3\n  jobTemplate:\n    spec:\n      backoffLimit: 2', 'concurencyPolicy: Forbid\n  startingDeadlineSeconds: 3600\n  successfulJobsHistoryLimit: 3\n  failedJobsHistoryLimit: 3\n  jobTemplate:\n    spec:\n      backoffLimit: 2', 'concurencyPolicy is not a field'],
    ['runs allowed to overlap', 'concurrencyPolicy: Forbid', 'concurrencyPolicy: Allow', 'concurrencyPolicy must be Forbid'],
    ['an unknown variable', '- name: BACKUP_KEEP', '- name: BACKUP_KEPT', 'env BACKUP_KEPT is not a mysql-agent variable'],
    ['a variable of another command', '- name: DRILL_DIR', '- name: BACKUP_KEEP', 'env BACKUP_KEEP is read by backup only, not verify-backup'],
    ['a value the agent refuses', 'value: "7"', 'value: "0"', 'BACKUP_KEEP="0" is invalid'],

    ['peers named otherwise than Kubernetes does', 'value: mysql\n                - name: SERVICE_NAME', 'value: mysqld\n                - name: SERVICE_NAME', 'looks for ordinal 0 at mysqld-0.mysql'],
    ['a Secret key that does not exist', 'key: aws-secret-access-key', 'key: aws-secret-key', 'mysql-backup-store/aws-secret-key'],
    ['a drill directory on the root filesystem', 'value: /scratch', 'value: /var/scratch', 'DRILL_DIR /var/scratch is not a volume mount'],
    ['a root pod', 'runAsUser: 999', 'runAsUser: 0', 'must run as the image'],
  ])('%s', async (_what, from, to, expected) => {
    const problems = problemsOf(await renderWithBackups('mariadb', { file: jobs, from, to })).join('\n');
    expect(problems).toContain(expected);
  });
});

describe('broken archive wiring planted in the backup component fails the checks', () => {
  const patch = `${COMPONENT}/statefulset-patch.yaml`;
  const settings = `${COMPONENT}/store-settings.env`;
  const storeUrlRef = '            - name: BACKUP_STORE_URL\n              valueFrom:\n                configMapKeyRef:\n                  name: mysql-backup-store-settings\n                  key: BACKUP_STORE_URL\n';
  const accessKey = '            - name: AWS_ACCESS_KEY_ID\n              valueFrom:\n                secretKeyRef:\n                  name: mysql-backup-store\n                  key: aws-access-key-id\n';
  it.each([
    ['the sidecar without BACKUP_STORE_URL', patch, storeUrlRef, '', 'sidecar on mysql-0 has no BACKUP_STORE_URL: the primary archives no binary logs'],
    ['the sidecar on another store than the backups', patch, storeUrlRef, '            - name: BACKUP_STORE_URL\n              value: s3://mysql-backups/other\n', 'sidecar on mysql-0 archives to s3://mysql-backups/other/ (endpoint AWS, region us-east-1, path-style false), the backup Job writes to s3://mysql-backups/mysql/'],
    ['the sidecar without the store\'s credentials', patch, accessKey, '', 'are not the backup Job\'s'],
    ['an archive interval the agent refuses', patch, 'value: "60"', 'value: "1"', 'BINLOG_ARCHIVE_INTERVAL="1" is invalid'],
    ['a ConfigMap key that does not exist', patch, 'key: S3_REGION', 'key: S3_REGON', '/S3_REGON: the render has no such ConfigMap key'],
    ['a store URL the agent refuses', settings, 'BACKUP_STORE_URL=s3://mysql-backups/mysql', 'BACKUP_STORE_URL=mysql-backups', 'BACKUP_STORE_URL="mysql-backups" is invalid'],
  ])('%s', async (_what, file, from, to, expected) => {
    const problems = problemsOf(await renderWithBackups('mariadb', { file, from, to })).join('\n');
    expect(problems).toContain(expected);
  });
});
