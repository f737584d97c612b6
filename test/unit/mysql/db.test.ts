import { describe, expect, it } from 'vitest';
import { parseReplicaStatus } from '../../../agent/mysql/db.js';

describe('parseReplicaStatus', () => {
  it('reads a MariaDB SHOW SLAVE STATUS row', () => {
    const row = {
      Slave_IO_State: 'Waiting for master to send event',
      Master_Host: 'mysql-0.mysql',
      Master_User: 'repl',
      Master_Port: 3306,
      Slave_IO_Running: 'Yes',
      Slave_SQL_Running: 'Yes',
      Last_IO_Errno: 0,
      Last_IO_Error: '',
      Last_SQL_Error: '',
      Seconds_Behind_Master: 0,
      Using_Gtid: 'Slave_Pos',
      Master_SSL_Allowed: 'Yes',
      Master_SSL_CA_File: '/etc/mysql-agent/tls/ca.crt',
      Master_SSL_Verify_Server_Cert: 'No',
    };
    expect(parseReplicaStatus(row)).toEqual({
      configured: true,
      sourceHost: 'mysql-0.mysql',
      ioRunning: 'Yes',
      sqlRunning: 'Yes',
      secondsBehind: 0,
      lastIoError: null,
      lastIoErrno: null,
      lastSqlError: null,
      usingGtid: 'Slave_Pos',
      usesGtid: true,
      ssl: { allowed: 'Yes', caFile: '/etc/mysql-agent/tls/ca.crt', verifyServerCert: 'No' },
    });
  });

  it('reads a MySQL 8.4 SHOW REPLICA STATUS row', () => {
    const row = {
      Replica_IO_State: 'Waiting for source to send event',
      Source_Host: 'mysql-0.mysql',
      Source_Port: 3306,
      Replica_IO_Running: 'Connecting',
      Replica_SQL_Running: 'Yes',
      Seconds_Behind_Source: 12,
      Last_IO_Errno: 1045,
      Last_IO_Error: "error connecting to source 'repl@mysql-0.mysql:3306'",
      Last_SQL_Error: '',
      Auto_Position: 1,
      Source_SSL_Allowed: 'Yes',
      Source_SSL_CA_File: '',
      Source_SSL_Verify_Server_Cert: 'Yes',
    };
    expect(parseReplicaStatus(row)).toEqual({
      configured: true,
      sourceHost: 'mysql-0.mysql',
      ioRunning: 'Connecting',
      sqlRunning: 'Yes',
      secondsBehind: 12,
      lastIoError: "error connecting to source 'repl@mysql-0.mysql:3306'",
      lastIoErrno: 1045,
      lastSqlError: null,
      usingGtid: null,
      usesGtid: true,
      ssl: { allowed: 'Yes', caFile: '', verifyServerCert: 'Yes' },
    });
  });

  it('reads a NULL Seconds_Behind as null, not 0', () => {
    const status = parseReplicaStatus({ Master_Host: 'h', Slave_IO_Running: 'No', Slave_SQL_Running: 'No', Seconds_Behind_Master: null });
    expect(status.secondsBehind).toBeNull();
    expect(status.ioRunning).toBe('No');
  });

  it('reads a stringly Seconds_Behind as a number', () => {
    expect(parseReplicaStatus({ Source_Host: 'h', Seconds_Behind_Source: '7' }).secondsBehind).toBe(7);
  });

  it('calls no row not configured', () => {
    expect(parseReplicaStatus(undefined)).toEqual({
      configured: false,
      sourceHost: null,
      ioRunning: null,
      sqlRunning: null,
      secondsBehind: null,
      lastIoError: null,
      lastIoErrno: null,
      lastSqlError: null,
      usingGtid: null,
      usesGtid: null,
      ssl: { allowed: null, caFile: null, verifyServerCert: null },
    });
  });

  it('tells GTID from position replication in both vocabularies', () => {
    expect(parseReplicaStatus({ Master_Host: 'h', Using_Gtid: 'No' }).usesGtid).toBe(false);
    expect(parseReplicaStatus({ Master_Host: 'h', Using_Gtid: 'Current_Pos' }).usesGtid).toBe(true);
    expect(parseReplicaStatus({ Source_Host: 'h', Auto_Position: 0 }).usesGtid).toBe(false);
  });

  it('calls an empty row or an empty host not configured', () => {
    expect(parseReplicaStatus({}).configured).toBe(false);
    const reset = parseReplicaStatus({ Master_Host: '', Slave_IO_Running: 'No' });
    expect(reset.configured).toBe(false);
    expect(reset.sourceHost).toBeNull();
  });
});
