/**
 * manifests/components/backup/ in both flavors, offline: rendered with the flavor, schema-checked
 * (CronJob included, unknown fields too), and checked against the agent; planted typos fail.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { consistencyProblems, cronJobProblems, schemaProblems } from './check.js';
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
const problemsOf = (docs: KubeDoc[]) => [...docs.flatMap(schemaProblems), ...consistencyProblems(docs), ...cronJobProblems(docs)];

describe.each(FLAVORS)('manifests/%s with components/backup', (flavor) => {
  it('adds the two CronJobs and the store Secret to the flavor', async () => {
    const docs = await renderWithBackups(flavor);
    const added = docs.map((d) => `${d.kind}/${d.metadata.name}`).filter((n) => /CronJob|backup-store/.test(n));
    expect(added.sort()).toEqual(['CronJob/mysql-backup', 'CronJob/mysql-verify-backup', 'Secret/mysql-backup-store']);
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
    ['a store URL the agent refuses', 'value: s3://mysql-backups/mysql', 'value: mysql-backups', 'BACKUP_STORE_URL="mysql-backups" is invalid'],
    ['peers named otherwise than Kubernetes does', 'value: mysql\n                - name: SERVICE_NAME', 'value: mysqld\n                - name: SERVICE_NAME', 'looks for ordinal 0 at mysqld-0.mysql'],
    ['a Secret key that does not exist', 'key: aws-secret-access-key', 'key: aws-secret-key', 'mysql-backup-store/aws-secret-key'],
    ['a drill directory on the root filesystem', 'value: /scratch', 'value: /var/scratch', 'DRILL_DIR /var/scratch is not a volume mount'],
    ['a root pod', 'runAsUser: 999', 'runAsUser: 0', 'must run as the image'],
  ])('%s', async (_what, from, to, expected) => {
    const problems = problemsOf(await renderWithBackups('mariadb', { file: jobs, from, to })).join('\n');
    expect(problems).toContain(expected);
  });
});
