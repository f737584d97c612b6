/**
 * Server and backup-tool images pinned together in manifests/base/versions.env: the rules that say
 * which tool serves which server, each flavor's render against them, the documents that name the
 * images, and mismatches planted in the versions file, a flavor, the Dockerfile and a README.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { consistencyProblems, dockerfileFacts, isAgent, plantedProblems } from './check.js';
import { FLAVORS, REPO, podContainers, renderFlavor, statefulSet } from './render.js';
import { documentProblems, imageMentions, parseVersions, readVersions, resolvePin, toolProblem, versionsProblems } from './versions.js';

describe('which backup tool serves which server', () => {
  it.each([
    ['mariadb:10.11.19', 'mariadb:10.11.19'],
    ['registry.example.com/mariadb:10.11.19', 'registry.example.com/mariadb:10.11.19'],
    // Percona: any XtraBackup 8.4 release works with any MySQL 8.4 release, older or newer.
    ['percona/percona-xtrabackup:8.4.0-6', 'mysql:8.4.10'],
    ['percona/percona-xtrabackup:8.4.0-6.1', 'mysql:8.4.0'],
  ])('%s serves %s', (tool, server) => {
    expect(toolProblem(tool, server)).toBeUndefined();
  });

  it.each([
    ['mariadb:10.11', 'mariadb:10.11', 'mariadb:10.11 is not pinned to a release'],
    ['mariadb:10.11.18', 'mariadb:10.11.19', "is not the server's image mariadb:10.11.19"],
    ['mariadb:latest', 'mariadb:10.11.19', 'mariadb:latest is not pinned'],
    ['percona/percona-xtrabackup:8.4', 'mysql:8.4', 'percona/percona-xtrabackup:8.4 is not pinned'],
    ['percona/percona-xtrabackup:8.4.0-6', 'mysql:9.7.1', 'backs up MySQL 8.4 only, and the server is mysql:9.7.1'],
    ['percona/percona-xtrabackup:8.0.35-31', 'mysql:8.4.10', 'backs up MySQL 8.0 only'],
    ['mysql:8.4.10', 'mysql:8.4.10', 'is not Percona XtraBackup'],
  ])('%s does not serve %s', (tool, server, why) => {
    expect(toolProblem(tool, server)).toContain(why);
  });
});

describe('each flavor', () => {
  it.each(FLAVORS)('%s: the server runs next to an agent built on a pinned image whose backup tool serves it', async (flavor) => {
    const spec = statefulSet(await renderFlavor(flavor)).spec.template.spec;
    const server = spec.containers.find((c) => !isAgent(c))!.image;
    const problems = podContainers(spec)
      .filter(isAgent)
      .flatMap((c) => {
        const base = resolvePin(dockerfileFacts().builds.get(c.image) ?? '', readVersions()) ?? '';
        const why = toolProblem(base, server);
        return why ? [`${c.name} (${c.image}, built on ${base}) next to the server ${server}: ${why}`] : [];
      });
    expect(problems).toEqual([]);
  });
});

describe('manifests/base/versions.env', () => {
  it('pins every server and tool image to a release, the MySQL pair in agreement', () => {
    expect(versionsProblems(readVersions())).toEqual([]);
  });

  it('is the only place a version is written: every document names exactly the pinned images', async () => {
    expect(await documentProblems(readVersions())).toEqual([]);
  });

  it('refuses floating tags, missing pins and a MySQL pair of two series', () => {
    expect(versionsProblems(parseVersions('MARIADB_IMAGE=mariadb:10.11\nMYSQL_IMAGE=mysql:9.7.1\nXTRABACKUP_IMAGE=percona/percona-xtrabackup:8.4.0-6\n'))).toEqual([
      'versions.env MARIADB_IMAGE=mariadb:10.11: not pinned to a release (tag 10.11 moves with every push)',
      'versions.env: percona/percona-xtrabackup:8.4.0-6 is XtraBackup 8.4, which backs up MySQL 8.4 only, and the server is mysql:9.7.1',
    ]);
    expect(versionsProblems(parseVersions('# nothing pinned\n'))).toEqual(['versions.env sets no MARIADB_IMAGE', 'versions.env sets no MYSQL_IMAGE', 'versions.env sets no XTRABACKUP_IMAGE']);
    expect(() => parseVersions('MARIADB_IMAGE = mariadb:10.11.19\n', 'versions.env')).toThrow('versions.env:1: "MARIADB_IMAGE = mariadb:10.11.19" is not VARIABLE=image');
  });

  it('finds the images a text names, not stand-ins, the agent, variables or user names', () => {
    const text = ['FROM mariadb:10.11.19 and mysql:8.4.', 'mysql-agent-standin/mariadb:10.11 mysql-agent:0.1.0-mysql8.4', 'chown mysql:mysql; mysql-0.mysql:3306 "$XTRABACKUP_IMAGE" $PREFIX/mariadb:10.11', '`percona/percona-xtrabackup:8.4` mariadb:lts ${BASE_IMAGE:-mariadb:10.11}'].join('\n');
    expect(imageMentions(text)).toEqual([
      { line: 1, image: 'mariadb:10.11.19' },
      { line: 1, image: 'mysql:8.4' },
      { line: 4, image: 'percona/percona-xtrabackup:8.4' },
      { line: 4, image: 'mariadb:lts' },
      { line: 4, image: 'mariadb:10.11' },
    ]);
  });
});

describe('a mismatch planted in one place fails the checks', () => {
  it('a server bumped in versions.env without the agent base the Dockerfile builds on', async () => {
    const problems = await plantedProblems('base/versions.env', 'MARIADB_IMAGE=mariadb:10.11.19', 'MARIADB_IMAGE=mariadb:10.11.20');
    expect(problems.join('\n')).toContain('sidecar: the Dockerfile builds mysql-agent:0.1.0 on mariadb:10.11.19, which is not pinned in manifests/base/versions.env');
  });

  it('a floating server tag in versions.env', async () => {
    const problems = await plantedProblems('base/versions.env', 'MYSQL_IMAGE=mysql:8.4.10', 'MYSQL_IMAGE=mysql:8.4', 'mysql');
    expect(problems.join('\n')).toContain('versions.env MYSQL_IMAGE=mysql:8.4: not pinned to a release');
  });

  it("a flavor that takes the other flavor's server", async () => {
    const problems = await plantedProblems('mariadb/kustomization.yaml', 'fieldPath: data.MARIADB_IMAGE', 'fieldPath: data.MYSQL_IMAGE');
    expect(problems.join('\n')).toContain('sidecar: mysql-agent:0.1.0 is built on mariadb:10.11.19, whose backup tool cannot serve the server: mariadb:10.11.19 is not Percona XtraBackup, the backup tool for mysql:8.4.10');
  });

  it('a server image written into the StatefulSet instead of taken from versions.env', async () => {
    const problems = await plantedProblems('base/statefulset.yaml', 'image: mysql-server', 'image: mariadb:10.11');
    expect(problems.join('\n')).toMatch(/^render failed: .*unable to find field \\"spec\.template\.spec\.containers\.\[image=mysql-server\]\.image\\" in replacement target/s);
  });

  it('an agent image whose base is pinned but cannot serve the server', async () => {
    const text = (await readFile(join(REPO, 'Dockerfile'), 'utf8')).replace('BASE_IMAGE="$XTRABACKUP_IMAGE"', 'BASE_IMAGE="$MARIADB_IMAGE"');
    const problems = consistencyProblems(await renderFlavor('mysql'), dockerfileFacts(text));
    expect(problems.join('\n')).toContain('sidecar: mysql-agent:0.1.0-mysql8.4 is built on mariadb:10.11.19, whose backup tool cannot serve the server: mariadb:10.11.19 is not Percona XtraBackup, the backup tool for mysql:8.4.10');
  });

  it('a Dockerfile whose default base is not the pinned server image', async () => {
    const text = (await readFile(join(REPO, 'Dockerfile'), 'utf8')).replace(/^ARG BASE_IMAGE=.*$/m, 'ARG BASE_IMAGE=mariadb:10.11');
    const problems = consistencyProblems(await renderFlavor('mariadb'), dockerfileFacts(text));
    expect(problems.join('\n')).toContain('the Dockerfile builds mysql-agent:0.1.0 on mariadb:10.11, which is not pinned in manifests/base/versions.env');
  });

  it('a README that still names the floating tag', async () => {
    const files = new Map([['manifests/README.md', 'server image `mariadb:10.11`\n']]);
    expect(await documentProblems(readVersions(), files)).toEqual(['manifests/README.md:1 names mariadb:10.11; manifests/base/versions.env pins mariadb:10.11.19']);
  });
});
