/**
 * The second half of PRIMARY_EMPTY_START=recover, run once by the sidecar at ordinal 0: a
 * primary rebuilt from a replica holds the replica's data but an empty binary log, whose first
 * Gtid_list says "no history". MariaDB 10.11 then numbers new transactions on from
 * gtid_slave_pos (0-100-N+1), and a replica that was BEHIND the rebuilt point (at 0-100-M, M < N)
 * connects without an error and silently skips M+1..N (seen on the rig: rows missing, both
 * threads running). Setting the binary log's GTID state first makes the new binary log begin
 * with Gtid_list [0-100-N]: replicas at N resume, replicas behind stop with error 1236.
 *
 * | flavor  | statements (verified on MariaDB 10.11; MySQL from its documentation)            |
 * |---------|--------------------------------------------------------------------------------|
 * | MariaDB | RESET MASTER; SET GLOBAL gtid_binlog_state = '<the clone's gtid_slave_pos>'      |
 * | MySQL   | RESET MASTER (8.2+: RESET BINARY LOGS AND GTIDS); SET GLOBAL gtid_purged = '<set>' |
 *
 * (RESET MASTER alone would be worse: MariaDB restarts numbering at 0-100-1.)
 *
 * Once only, write-ahead: the record in DATA_DIR says `applying` before the statements and
 * `applied` after, so a crash in between is finished, not repeated blindly. A server that wrote
 * something of its own before the statements ran is left alone and reported: resetting its
 * binary log would hide those transactions from the replicas.
 */
import mysql from 'mysql2';
import type { Logger } from '../core/log.js';
import { RECOVERY_RECORD, readRecoveryRecord, writeRecord } from '../core/records.js';
import { type Db, readReplicaStatus } from '../mysql/db.js';
import { gtidCovers } from '../mysql/gtid.js';
import { type ServerFacts, clearReplicationStatements } from '../mysql/replication-sql.js';
import { type ServerVersion, hasResetBinaryLogsAndGtids } from '../mysql/server-version.js';

export type ContinuityOutcome =
  | { readonly state: 'none' }
  | { readonly state: 'configured'; readonly how: 'recorded-earlier' | 'applied' | 'found-on-server' }
  | { readonly state: 'blocked'; readonly reason: string };

/** The statements that make a server with an empty binary log continue from `gtid`. */
export function continuityStatements(version: ServerVersion, gtid: string): string[] {
  if (version.flavor === 'mariadb') return ['RESET MASTER', mysql.format('SET GLOBAL gtid_binlog_state = ?', [gtid])];
  return [hasResetBinaryLogsAndGtids(version) ? 'RESET BINARY LOGS AND GTIDS' : 'RESET MASTER', mysql.format('SET GLOBAL gtid_purged = ?', [gtid])];
}

/** The server's own GTID state: MariaDB's binary log state, MySQL's executed set. */
async function serverGtidState(db: Db, version: ServerVersion): Promise<string> {
  const sql = version.flavor === 'mariadb' ? 'SELECT @@GLOBAL.gtid_binlog_state AS g' : 'SELECT @@GLOBAL.gtid_executed AS g';
  const [row] = await db.query(sql);
  return String(row?.g ?? '').replace(/\s+/g, '');
}

export async function ensurePrimaryContinuity(deps: {
  readonly db: Db;
  readonly server: ServerFacts;
  readonly dataDir: string;
  readonly log: Logger;
}): Promise<ContinuityOutcome> {
  const { db, server, dataDir } = deps;
  const log = deps.log.child({ phase: 'primary-recovery' });
  const record = await readRecoveryRecord(dataDir);
  if (record === null) return { state: 'none' };
  const done = record.continuity?.how === 'applied' || record.continuity?.how === 'found-on-server';
  if (done) return { state: 'configured', how: 'recorded-earlier' };
  const save = (how: 'applying' | 'applied' | 'found-on-server', statements: string[]) =>
    writeRecord(dataDir, RECOVERY_RECORD, { ...record, continuity: { how, statements, at: new Date().toISOString() } });

  const replica = await readReplicaStatus(db, server.version);
  const clear = clearReplicationStatements(server.version).map((s) => s.sql);
  const running = replica.configured && (replica.ioRunning !== 'No' || replica.sqlRunning !== 'No');
  if (running) {
    const reason = `the rebuilt primary replicates (from ${replica.sourceHost}): ordinal 0 must not replicate; run ${clear.join('; ')} after checking, then restart the sidecar`;
    log.error(reason);
    return { state: 'blocked', reason };
  }
  const current = await serverGtidState(db, server.version);
  if (record.continuity?.how === 'applying' && current !== '' && gtidCovers(current, record.gtid)) {
    // The statements ran; we stopped before recording it.
    log.info({ gtid: current, target: record.gtid }, 'the GTID state was set before a restart: not applying it again');
    await save('found-on-server', []);
    return { state: 'configured', how: 'found-on-server' };
  }
  // Nothing written here yet: MariaDB's binary log is still empty; MySQL's executed set holds
  // nothing beyond the clone's (a restored gtid_executed may lag it, never exceed it).
  const untouched = server.version.flavor === 'mariadb' ? current === '' : gtidCovers(record.gtid, current);
  if (!untouched) {
    const reason = `the rebuilt primary wrote transactions of its own (GTID state ${current}) before its GTID state was set to continue from ${record.gtid}: not resetting its binary log, which would hide them from the replicas; check the data against the replicas, then run ${continuityStatements(server.version, record.gtid).join('; ')} by hand if it is safe and set "continuity" in ${RECOVERY_RECORD}`;
    log.error({ gtid: current, target: record.gtid }, reason);
    return { state: 'blocked', reason };
  }
  // A clone of a MySQL replica carries that replica's channel (in mysql.ibd); skip-replica-start
  // kept it stopped. Ordinal 0 follows no one: it goes with the GTID statements.
  if (replica.configured) log.warn({ source_host: replica.sourceHost }, "the clone carries its donor's replication channel (stopped): clearing it");
  const statements = [...(replica.configured ? clear : []), ...continuityStatements(server.version, record.gtid)];
  await save('applying', statements);
  for (const sql of statements) {
    log.info({ sql }, 'applying');
    await db.query(sql);
  }
  const after = await serverGtidState(db, server.version);
  if (!gtidCovers(after, record.gtid)) {
    const reason = `after ${statements.join('; ')} the server reports GTID state "${after}", not ${record.gtid}`;
    log.error(reason);
    return { state: 'blocked', reason };
  }
  await save('applied', statements);
  log.warn({ gtid: after, source: record.source, behind: record.behind }, `recovered primary continues from GTID ${after}; replicas at that state resume by themselves`);
  return { state: 'configured', how: 'applied' };
}
