/**
 * TLS on real MariaDB servers: each node's agent and server use the node's certificate (made by
 * the run, test/tls/pki.ts; the server through ssl_cert, ssl_key, ssl_ca). The replica clones
 * over TLS with the real backup tool and is set up without replication TLS; restarted with
 * REPLICATION_TLS=verify-ca it gets the SSL options once, position kept: the replica's status
 * shows SSL in use, the primary counts the TLS connection, the replication account can then be
 * made to REQUIRE SSL, and a further restart applies nothing.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPLICATION_TLS_RECORD } from '../../agent/core/records.js';
import { type Pki, createPki } from '../tls/pki.js';
import { countItems, createItems, insertItems, newBaseDir, waitUntil } from './helpers.js';
import { CREDENTIALS, Rig, type RigNode } from './rig.js';

const PREFIX = '127.0.4.1';
let pki: Pki;
let rig: Rig;
const tlsDirs: string[] = [];

beforeAll(async () => {
  pki = await createPki();
  for (const n of [0, 1]) tlsDirs[n] = await pki.issue({ name: `mysql-${n}`, ips: [`${PREFIX}${n}`], dns: [`mysql-${n}.mysql`] });
  rig = new Rig({ baseDir: await newBaseDir('replication-tls'), ipPrefix: PREFIX, tlsDirOf: (n) => tlsDirs[n]! });
  await rig.node(0).up();
  await createItems(rig.node(0), 200);
  await rig.node(1).up();
});

afterAll(async () => {
  await rig?.destroy();
  await pki?.destroy();
});

const sslAccepts = async () => Number((await rig.node(0).sql<{ Value: string }>("SHOW GLOBAL STATUS LIKE 'Ssl_accepts'"))[0]!.Value);
const sslApplying = (n: number) => rig.node(n).sidecarLines().filter((l) => l.msg === 'applying' && String(l.sql).includes('SSL'));

/**
 * The verdict, not a moment: /readyz can answer from the channel that kept running before the
 * sidecar has applied the options (a CI run read the log in between).
 */
const tlsApplied = (node: RigNode) =>
  waitUntil(
    () => readFile(join(node.dataDir, REPLICATION_TLS_RECORD), 'utf8').then((t) => (JSON.parse(t) as { state?: string }).state === 'applied', () => false),
    'the SSL options to be applied',
  );

describe('replication over TLS on real servers', () => {
  it('cloned over TLS with the real backup tool; replication set up without TLS', async () => {
    const init = await readFile(join(rig.node(1).dir, 'init.log'), 'utf8');
    expect(init).toContain(`"peer":"${PREFIX}0:3307"`);
    expect((await rig.node(0).sql<{ v: string }>("SELECT @@have_ssl AS v"))[0]!.v).toBe('YES');
    const s = await rig.node(1).replicaStatus();
    expect(s?.Slave_IO_Running).toBe('Yes');
    expect(s?.Master_SSL_Allowed).toBe('No');
  });

  it('restarted with REPLICATION_TLS=verify-ca: the SSL options once, position kept; the replica uses SSL, the primary counts it', async () => {
    const replica = rig.node(1);
    const before = await replica.replicaStatus();
    const accepts = await sslAccepts();
    await replica.stopSidecar();
    replica.startSidecar({ REPLICATION_TLS: 'verify-ca' });
    await tlsApplied(replica);
    await replica.waitFor('/readyz');
    expect(sslApplying(1).map((l) => l.sql)).toEqual([`CHANGE MASTER TO MASTER_SSL=1, MASTER_SSL_CA='${join(tlsDirs[1]!, 'ca.crt')}', MASTER_SSL_VERIFY_SERVER_CERT=0`]);
    // Nothing else was touched: no host, account or position in any statement of this start.
    const applied = replica.sidecarLines().filter((l) => l.msg === 'applying').map((l) => String(l.sql));
    expect(applied).toEqual(['STOP SLAVE', expect.stringMatching(/^CHANGE MASTER TO MASTER_SSL=1/), 'START SLAVE']);
    const after = await replica.replicaStatus();
    expect(after?.Master_SSL_Allowed).toBe('Yes');
    expect(after?.Master_SSL_CA_File).toBe(join(tlsDirs[1]!, 'ca.crt'));
    expect(after?.Using_Gtid).toBe(before?.Using_Gtid);
    expect(await sslAccepts()).toBeGreaterThan(accepts);
    expect(JSON.parse(await readFile(join(replica.dataDir, REPLICATION_TLS_RECORD), 'utf8'))).toMatchObject({ state: 'applied', how: 'applied', mode: 'verify-ca' });
    // Rows written before and after the change arrive, in order: the position was kept.
    await insertItems(rig.node(0), 50);
    await waitUntil(async () => (await countItems(replica)) === (await countItems(rig.node(0))), 'the replica to catch up');
  });

  it('the replication account can then REQUIRE SSL; a further restart applies nothing', async () => {
    const replica = rig.node(1);
    await rig.node(0).sql(`ALTER USER ?@'%' REQUIRE SSL`, [CREDENTIALS.replicationUser]);
    await replica.sql('STOP SLAVE');
    await replica.sql('START SLAVE');
    await waitUntil(async () => (await replica.replicaStatus())?.Slave_IO_Running === 'Yes', 'the IO thread over TLS with REQUIRE SSL');
    await replica.stopSidecar();
    replica.startSidecar({ REPLICATION_TLS: 'verify-ca' });
    await tlsApplied(replica);
    await replica.waitFor('/readyz');
    expect(sslApplying(1)).toEqual([]);
    await insertItems(rig.node(0), 20);
    await waitUntil(async () => (await countItems(replica)) === (await countItems(rig.node(0))), 'the replica to catch up');
  });

  it('verify-ca refuses a primary whose certificate another CA signed', async () => {
    // The replica's CA file replaced by the other CA's: the IO thread cannot connect, and says why.
    const replica = rig.node(1);
    await replica.sql(`STOP SLAVE`);
    await replica.sql(`CHANGE MASTER TO MASTER_SSL_CA=?`, [join(pki.root, 'other-ca.crt')]);
    await replica.sql(`START SLAVE`);
    const status = await waitUntil(async () => {
      const s = await replica.replicaStatus();
      return s?.Slave_IO_Running !== 'Yes' && String(s?.Last_IO_Error ?? '') !== '' ? s : undefined;
    }, 'the IO thread to refuse the primary');
    expect(String(status.Last_IO_Error)).toMatch(/SSL|certificate|TLS/i);
    await replica.sql(`STOP SLAVE`);
    await replica.sql(`CHANGE MASTER TO MASTER_SSL_CA=?`, [join(tlsDirs[1]!, 'ca.crt')]);
    await replica.sql(`START SLAVE`);
  });
});
