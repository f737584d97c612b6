/**
 * `mysql-agent plan`: what the sidecar would do with the clone in DATA_DIR, without doing it.
 * Prints the statements one per line (password masked) on stdout and the chosen mode on stderr;
 * the server is the live one (MYSQL_*) or one described by --server-version / --flavor /
 * --gtid-mode, so any version can be checked from anywhere.
 */
import type { Writable } from 'node:stream';
import { PlanError } from '../core/errors.js';
import { REPLICATION_RECORD, readReplicationState, readReplicationTlsRecord } from '../core/records.js';
import { readCloneCoordinates } from './clone-info.js';
import { createDb, readReplicaStatus, readServerFacts } from './db.js';
import type { PlanConfig } from './plan-settings.js';
import { noCloneReason, setupStep, tlsStep } from './replication-setup.js';
import { type ServerFacts, planReplication, planStatements, replicationSource, tlsStatements } from './replication-sql.js';

/** Resolves with nothing to report, or throws PlanError / ParseError (exit 2). */
export async function runPlan(config: PlanConfig, out: Writable, note: Writable): Promise<void> {
  if (config.role === 'primary') {
    note.write('ordinal 0 is the primary: the sidecar starts no replication\n');
    return;
  }
  let server: ServerFacts;
  if (config.offlineServer) {
    // A described server is planned for as a fresh clone: what the sidecar runs on its first start.
    server = config.offlineServer;
  } else {
    const db = createDb(config.mysql);
    try {
      server = await readServerFacts(db);
      const recorded = await readReplicationState(config.dataDir);
      const status = await readReplicaStatus(db, server.version);
      const hasClone = recorded !== 'applied' && (await readCloneCoordinates(config.dataDir).then((c) => c !== null, () => true));
      const step = setupStep(recorded, status.configured, hasClone);
      if (step === 'keep' || step === 'adopt') {
        note.write(
          step === 'keep'
            ? `replication was configured earlier (${REPLICATION_RECORD}): the sidecar applies nothing and starts stopped replication threads\n`
            : `the server already replicates from ${status.sourceHost} (record: ${recorded}): the sidecar adopts it and applies nothing\n`,
        );
        const tls = replicationSource(config).tls;
        if (tlsStep(await readReplicationTlsRecord(config.dataDir), status.ssl, tls) === 'apply') {
          note.write(`its channel's SSL settings are not REPLICATION_TLS=${tls.mode}: the sidecar gives it these once, position kept\n`);
          for (const statement of tlsStatements(server.version, tls)) out.write(`${statement.shown};\n`);
        }
        return;
      }
      if (step === 'blocked') throw new PlanError(noCloneReason(config.dataDir));
      if (status.configured) note.write(`the server has a replication channel the clone brought along (to ${status.sourceHost}): the plan clears it first\n`);
    } finally {
      await db.end();
    }
  }
  const clone = await readCloneCoordinates(config.dataDir);
  if (clone === null) {
    throw new PlanError(`no xtrabackup_slave_info or xtrabackup_binlog_info in DATA_DIR=${config.dataDir}: there is no clone to plan for`);
  }
  const plan = planReplication(server, clone.coordinates, config.replicationMode, replicationSource(config));
  note.write(`-- ${server.version.flavor} ${server.version.text}; ${clone.file}; mode ${plan.mode} (${plan.why})\n`);
  for (const statement of planStatements(plan)) out.write(`${statement.shown};\n`);
}
