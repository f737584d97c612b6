/**
 * The flavor and version of a server, parsed once from `SELECT VERSION(), @@version_comment`,
 * with capability helpers compared by `>=` so that version checks live in one place.
 */
import { ParseError } from '../core/errors.js';

export type Flavor = 'mysql' | 'mariadb';

export interface ServerVersion {
  readonly flavor: Flavor;
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly text: string;
}

/** Parses e.g. `10.11.19-MariaDB-0+deb12u1` or `8.4.3` (+ comment "MySQL Community Server - GPL"). */
export function parseServerVersion(version: string, comment = ''): ServerVersion {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) throw new ParseError(`server version "${version}" is not of the form X.Y.Z`, 'SELECT VERSION()');
  const flavor: Flavor = /mariadb/i.test(version) || /mariadb/i.test(comment) ? 'mariadb' : 'mysql';
  return { flavor, major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: version };
}

export function atLeast(v: ServerVersion, major: number, minor = 0, patch = 0): boolean {
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.patch >= patch;
}

/** START/STOP REPLICA and SHOW REPLICA STATUS exist (MySQL 8.0.22+; MariaDB 10.5.1+ accepts them too, we keep SLAVE there). */
export const hasReplicaKeyword = (v: ServerVersion): boolean => v.flavor === 'mysql' && atLeast(v, 8, 0, 22);

/** CHANGE REPLICATION SOURCE TO with SOURCE_* options (MySQL 8.0.23+); 8.4 removed the old spelling. */
export const hasChangeReplicationSource = (v: ServerVersion): boolean => v.flavor === 'mysql' && atLeast(v, 8, 0, 23);

/** caching_sha2_password without TLS needs the source's public key (MySQL 8.0+). */
export const needsPublicKeyFetch = (v: ServerVersion): boolean => v.flavor === 'mysql' && atLeast(v, 8, 0, 0);

/** RESET MASTER became RESET BINARY LOGS AND GTIDS in MySQL 8.2 (and is gone in 8.4). */
export const hasResetBinaryLogsAndGtids = (v: ServerVersion): boolean => v.flavor === 'mysql' && atLeast(v, 8, 2, 0);
