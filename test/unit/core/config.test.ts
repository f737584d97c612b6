import { describe, expect, it, vi } from 'vitest';
import { COMMANDS, type Command, type Config } from '../../../agent/commands.js';
import { ConfigError } from '../../../agent/core/errors.js';
import { type ConfigSources, HelpRequested, SettingsReader, kebab, loadCommand } from '../../../agent/core/settings.js';
import { hostOf } from '../../../agent/core/topology.js';

const TOKEN = '0123456789abcdef0123456789abcdef';
/** A PATH with MariaDB's tools, as in the Debian image. */
const MARIADB_TOOLS = new Set(['/usr/bin/mariadb-backup', '/usr/bin/mbstream']);

type ConfigOf<C extends Command> = Extract<Config, { command: C }>;

/** The config of the command named first in argv (the sidecar's by default). */
function load<C extends Command = 'sidecar'>(
  opts: {
    argv?: readonly [C, ...string[]] | readonly string[];
    env?: Record<string, string | undefined>;
    hostname?: string;
    executables?: Set<string>;
    cwd?: string;
  } = {},
): ConfigOf<C> {
  const executables = opts.executables ?? MARIADB_TOOLS;
  const sources: ConfigSources = {
    argv: opts.argv ?? ['sidecar'],
    // KUBERNETES_SERVICE_HOST as the kubelet sets it in every container.
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', BACKUP_TOKEN: TOKEN, KUBERNETES_SERVICE_HOST: '10.96.0.1', ...opts.env },
    hostname: opts.hostname ?? 'mysql-1',
    isExecutable: (p) => executables.has(p),
    cwd: opts.cwd,
  };
  return loadCommand(COMMANDS, sources) as ConfigOf<C>;
}

/** The command that reads a setting: the sidecar when it does, else init, else plan. */
const readerOf = (name: string): Command =>
  (['sidecar', 'init', 'plan'] as const).find((c) => COMMANDS[c].settings.some((s) => s.name === name))!;

/** Runs `fn`, expects a ConfigError and returns its message. */
function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('loadConfig defaults', () => {
  it('derives identity, role and server-id from the hostname', () => {
    const c = load({ hostname: 'mysql-2' });
    expect(c.command).toBe('sidecar');
    expect(c.podName).toBe('mysql-2');
    expect(c.set).toBe('mysql');
    expect(c.ordinal).toBe(2);
    expect(c.role).toBe('replica');
    expect(c.serverId).toBe(102);
  });

  it('makes ordinal 0 the primary with server-id 100', () => {
    const c = load({ hostname: 'mysql-0' });
    expect(c.role).toBe('primary');
    expect(c.serverId).toBe(100);
  });

  it('prefers POD_NAME over the hostname', () => {
    const c = load({ hostname: 'some-node', env: { POD_NAME: 'db-3' } });
    expect(c.podName).toBe('db-3');
    expect(c.set).toBe('db');
    expect(c.ordinal).toBe(3);
  });

  it('uses the directories of the tutorial', () => {
    const c = load({ argv: ['init'] });
    expect(c.configMapDir).toBe('/mnt/config-map');
    expect(c.confDir).toBe('/mnt/conf.d');
    expect(c.dataDir).toBe('/var/lib/mysql');
  });

  it('builds peer hosts from {set}-{ordinal}.{service} and the primary from ordinal 0', () => {
    const c = load({ argv: ['init'], hostname: 'web-db-2' });
    expect(hostOf(c.peerHosts, 1)).toBe('web-db-1.mysql');
    expect(hostOf(c.peerHosts, 0)).toBe('web-db-0.mysql');
    expect(load({ hostname: 'web-db-2' }).primaryHost).toBe('web-db-0.mysql');
  });

  it('uses SERVICE_NAME in peer hosts and the primary host', () => {
    const c = load({ env: { SERVICE_NAME: 'db-headless' } });
    expect(hostOf(load({ argv: ['init'], env: { SERVICE_NAME: 'db-headless' } }).peerHosts, 0)).toBe('mysql-0.db-headless');
    expect(c.primaryHost).toBe('mysql-0.db-headless');
  });

  it('connects to the local server as root without a password', () => {
    expect(load().mysql).toEqual({ host: '127.0.0.1', port: 3306, user: 'root', password: '' });
  });

  it('replicates with the MYSQL_* account unless REPLICATION_* is set', () => {
    expect(load({ env: { MYSQL_USER: 'agent', MYSQL_PASSWORD: 's3cret' } }).replication).toEqual({
      user: 'agent',
      password: 's3cret',
      tls: { mode: 'off', caFile: null },
    });
    expect(
      load({ env: { MYSQL_USER: 'agent', MYSQL_PASSWORD: 's3cret', REPLICATION_USER: 'repl', REPLICATION_PASSWORD: 'r' } })
        .replication,
    ).toEqual({ user: 'repl', password: 'r', tls: { mode: 'off', caFile: null } });
  });

  it('serves backups on :: (IPv4 and IPv6), port 3307, with the token and no rate cap', () => {
    expect(load().backup).toEqual({ bind: '::', port: 3307, token: TOKEN, idleTimeoutMs: 120_000, maxRateMbS: null });
  });

  it('uses clone retry defaults of 600 s and 30 s, and stream timeouts of 10 s, 30 min and 10 min, in milliseconds', () => {
    expect(load({ argv: ['init'] }).clone).toEqual({
      retryDeadlineMs: 600_000,
      retryMaxDelayMs: 30_000,
      timeouts: { connectMs: 10_000, firstByteMs: 1_800_000, idleMs: 600_000 },
      compression: 'auto',
      maxRateMbS: null,
      autoZstdBelowMbS: 150,
    });
  });

  it('logs at info and passes no extra tool arguments', () => {
    const c = load();
    expect(c.logLevel).toBe('info');
    expect(c.tools.extraArgs).toEqual([]);
  });

  it('treats an empty variable as unset', () => {
    const c = load({ env: { DATA_DIR: '', MYSQL_PORT: '', SERVICE_NAME: '' } });
    expect(c.dataDir).toBe('/var/lib/mysql');
    expect(c.mysql.port).toBe(3306);
    expect(c.primaryHost).toBe('mysql-0.mysql');
  });
});

describe('loadConfig overrides', () => {
  it('lets a flag override the environment variable of the same name', () => {
    const c = load({ argv: ['sidecar', '--data-dir', '/data/flag'], env: { DATA_DIR: '/data/env' } });
    expect(c.dataDir).toBe('/data/flag');
  });

  it('accepts --flag=value', () => {
    expect(load({ argv: ['sidecar', '--mysql-port=3310'] }).mysql.port).toBe(3310);
  });

  it('reads every setting from the environment', () => {
    const env = {
      SERVER_ID_OFFSET: '1000',
      CONFIG_MAP_DIR: '/cm',
      CONF_DIR: '/conf/',
      DATA_DIR: '/data',
      PEER_HOST_TEMPLATE: 'db{ordinal}.example.org',
      PRIMARY_HOST: 'primary.example.org',
      MYSQL_HOST: 'localhost',
      MYSQL_PORT: '3310',
      BACKUP_BIND: '127.0.0.1',
      BACKUP_PORT: '9000',
      BACKUP_IDLE_TIMEOUT: '15',
      BACKUP_MAX_RATE: '25',
      XTRABACKUP_ARGS: '--throttle=20  --parallel=2',
      CLONE_RETRY_DEADLINE: '60',
      CLONE_RETRY_MAX_DELAY: '5',
      CLONE_CONNECT_TIMEOUT: '4',
      CLONE_FIRST_BYTE_TIMEOUT: '7200',
      CLONE_IDLE_TIMEOUT: '90',
      CLONE_COMPRESSION: 'zstd',
      CLONE_MAX_RATE: '40',
      LOG_LEVEL: 'debug',
    };
    const c = load({ env });
    const i = load({ argv: ['init'], env });
    expect(c.serverId).toBe(1001);
    expect(i.configMapDir).toBe('/cm');
    expect(c.confDir).toBe('/conf'); // trailing slash dropped
    expect(c.dataDir).toBe('/data');
    expect(hostOf(i.peerHosts, 2)).toBe('db2.example.org');
    expect(c.primaryHost).toBe('primary.example.org');
    expect(c.mysql.host).toBe('localhost');
    expect(c.mysql.port).toBe(3310);
    expect(c.backup).toEqual({ bind: '127.0.0.1', port: 9000, token: TOKEN, idleTimeoutMs: 15_000, maxRateMbS: 25 });
    expect(c.tools.extraArgs).toEqual(['--throttle=20', '--parallel=2']);
    expect(i.clone).toEqual({ retryDeadlineMs: 60_000, retryMaxDelayMs: 5_000, timeouts: { connectMs: 4_000, firstByteMs: 7_200_000, idleMs: 90_000 }, compression: 'zstd', maxRateMbS: 40, autoZstdBelowMbS: 150 });
    expect(c.logLevel).toBe('debug');
  });

  it('drops the token when BACKUP_AUTH=none', () => {
    expect(load({ env: { BACKUP_AUTH: 'none' } }).backup.token).toBeNull();
    expect(load({ env: { BACKUP_AUTH: 'none', BACKUP_TOKEN: undefined } }).backup.token).toBeNull();
  });

  it('returns a frozen object', () => {
    const c = load();
    expect(Object.isFrozen(c)).toBe(true);
    expect(() => {
      (c as { dataDir: string }).dataDir = '/elsewhere';
    }).toThrow(TypeError);
  });
});

describe('loadConfig: IPv6', () => {
  it('accepts IPv6 literals wherever a host goes', () => {
    const sidecar = load({ env: { BACKUP_BIND: '::', PRIMARY_HOST: 'fd00:10::20', MYSQL_HOST: '::1' } });
    expect(sidecar.backup.bind).toBe('::');
    expect(sidecar.primaryHost).toBe('fd00:10::20');
    expect(sidecar.mysql.host).toBe('::1');
    expect(load({ env: { BACKUP_BIND: '::ffff:127.0.0.1' } }).backup.bind).toBe('::ffff:127.0.0.1');
    const init = load({ argv: ['init'], env: { CLONE_SOURCE: 'fd00::12', PEER_HOST_TEMPLATE: 'fd00::1{ordinal}' } });
    expect(init.cloneSource.choice).toEqual({ kind: 'host', host: 'fd00::12' });
  });

  it('names the bracket-free form in the message', () => {
    expect(configError(() => load({ env: { BACKUP_BIND: '[::]' } }))).toBe(
      'BACKUP_BIND="[::]" is invalid: expected a host name, an IPv4 address or an IPv6 address (without brackets)',
    );
  });
});

describe('loadConfig validation', () => {
  it.each([
    ['POD_NAME', { POD_NAME: 'mysql' }],
    ['POD_NAME', { POD_NAME: 'mysql-01' }],
    ['SERVER_ID_OFFSET', { SERVER_ID_OFFSET: 'ten' }],
    ['SERVER_ID_OFFSET', { SERVER_ID_OFFSET: '0' }],
    ['MYSQL_PORT', { MYSQL_PORT: '0' }],
    ['MYSQL_PORT', { MYSQL_PORT: '70000' }],
    ['MYSQL_PORT', { MYSQL_PORT: '-1' }],
    ['BACKUP_PORT', { BACKUP_PORT: '65536' }],
    ['BACKUP_AUTH', { BACKUP_AUTH: 'maybe' }],
    ['BACKUP_TOKEN', { BACKUP_TOKEN: 'short' }],
    ['BACKUP_TOKEN', { BACKUP_TOKEN: '0123456789 abcdef0123' }],
    ['DATA_DIR', { DATA_DIR: 'var/lib/mysql' }],
    ['CONF_DIR', { CONF_DIR: './conf.d' }],
    ['CONFIG_MAP_DIR', { CONFIG_MAP_DIR: 'config-map' }],
    ['PEER_HOST_TEMPLATE', { PEER_HOST_TEMPLATE: '{set}.{service}' }],
    ['PEER_HOST_TEMPLATE', { PEER_HOST_TEMPLATE: "{set}-{ordinal}'.x" }],
    ['PRIMARY_HOST', { PRIMARY_HOST: "mysql-0'; DROP TABLE x; --" }],
    ['PRIMARY_HOST', { PRIMARY_HOST: 'mysql 0' }],
    ['MYSQL_HOST', { MYSQL_HOST: 'local host' }],
    ['BACKUP_BIND', { BACKUP_BIND: '0.0.0.0:3307' }],
    // IPv6 literals bare: no brackets, no zone, nothing but hex digits, colons and dots.
    ['BACKUP_BIND', { BACKUP_BIND: '[::]' }],
    ['PRIMARY_HOST', { PRIMARY_HOST: 'fe80::1%eth0' }],
    ['PRIMARY_HOST', { PRIMARY_HOST: "fd00::1'; DROP TABLE x; --" }],
    ['PRIMARY_HOST', { PRIMARY_HOST: 'fd00:::1' }],
    ['MYSQL_HOST', { MYSQL_HOST: '::1 --skip-ssl' }],
    ['CLONE_SOURCE', { CLONE_SOURCE: '[fd00::12]:3307' }],
    ['MYSQL_USER', { MYSQL_USER: "ro'ot" }],
    ['MYSQL_USER', { MYSQL_USER: 'root;' }],
    ['REPLICATION_USER', { REPLICATION_USER: 'repl user' }],
    ['XTRABACKUP_ARGS', { XTRABACKUP_ARGS: '--throttle=20 rm' }],
    ['CLONE_RETRY_MAX_DELAY', { CLONE_RETRY_MAX_DELAY: '0' }],
    ['CLONE_CONNECT_TIMEOUT', { CLONE_CONNECT_TIMEOUT: '0' }],
    ['CLONE_FIRST_BYTE_TIMEOUT', { CLONE_FIRST_BYTE_TIMEOUT: '30m' }],
    ['CLONE_IDLE_TIMEOUT', { CLONE_IDLE_TIMEOUT: '-5' }],
    ['CLONE_COMPRESSION', { CLONE_COMPRESSION: 'gzip' }],
    ['CLONE_COMPRESSION_AUTO_BELOW', { CLONE_COMPRESSION_AUTO_BELOW: '0' }],
    ['CLONE_MAX_RATE', { CLONE_MAX_RATE: '1.5' }],
    ['BACKUP_MAX_RATE', { BACKUP_MAX_RATE: 'fast' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }],
    ['BACKUP_IDLE_TIMEOUT', { BACKUP_IDLE_TIMEOUT: '0' }],
    ['SERVICE_NAME', { SERVICE_NAME: 'My_Service' }],
    ['CLONE_SOURCE', { CLONE_SOURCE: 'mysql 2' }],
    ['CLONE_SOURCE', { CLONE_SOURCE: 'http://mysql-2:3307' }],
    ['CLONE_MAX_LAG', { CLONE_MAX_LAG: '-1' }],
    ['PEER_STATUS_TIMEOUT', { PEER_STATUS_TIMEOUT: '0' }],
    ['PEER_PROBE_COUNT', { PEER_PROBE_COUNT: 'all' }],
    ['PRIMARY_EMPTY_START', { PRIMARY_EMPTY_START: 'yes' }],
    ['READY_MAX_LAG', { READY_MAX_LAG: '1.5' }],
  ] as const)('names %s when it is invalid (%j)', (name, env) => {
    expect(configError(() => load({ argv: [readerOf(name)], env }))).toContain(name);
  });

  it('names POD_NAME when the hostname has no ordinal', () => {
    expect(configError(() => load({ hostname: 'mysql' }))).toContain('POD_NAME');
  });

  it('requires BACKUP_TOKEN for the sidecar unless BACKUP_AUTH=none', () => {
    expect(configError(() => load({ env: { BACKUP_TOKEN: undefined } }))).toContain('BACKUP_TOKEN');
    expect(load({ env: { BACKUP_TOKEN: undefined, BACKUP_AUTH: 'none' } }).backup.token).toBeNull();
  });

  it('lets init at ordinal 0 run without a token (it clones nothing)', () => {
    const c = load({ argv: ['init'], hostname: 'mysql-0', env: { BACKUP_TOKEN: undefined } });
    expect(c.command).toBe('init');
    expect(c.backup.token).toBeNull();
  });

  it('requires BACKUP_TOKEN for init at ordinal 1 (it clones with it)', () => {
    expect(configError(() => load({ argv: ['init'], hostname: 'mysql-1', env: { BACKUP_TOKEN: undefined } }))).toContain(
      'BACKUP_TOKEN',
    );
  });

  it('refuses an unknown flag and names it', () => {
    expect(configError(() => load({ argv: ['sidecar', '--bogus', 'x'] }))).toContain('--bogus');
  });

  it('refuses an unknown command and names it', () => {
    expect(configError(() => load({ argv: ['start'] }))).toContain('"start"');
  });

  it('refuses a missing command', () => {
    expect(configError(() => load({ argv: [] }))).toMatch(/no command/);
  });

  it('refuses a positional argument after the command', () => {
    configError(() => load({ argv: ['sidecar', 'extra'] }));
  });
});

describe('loadConfig --help', () => {
  it.each([
    [['--help'], null],
    [['-h'], null],
    [['init', '--help'], 'init'],
    [['sidecar', '-h'], 'sidecar'],
    [['plan', '--help'], 'plan'],
    [['status', '--help'], 'status'],
  ] as const)('%j throws HelpRequested listing exactly the settings of the command', (argv, command) => {
    let thrown: unknown;
    try {
      load({ argv: [...argv], env: { BACKUP_TOKEN: undefined } });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(HelpRequested);
    const text = (thrown as HelpRequested).text;
    for (const s of Object.values(COMMANDS).flatMap((c) => c.settings)) {
      const flag = `--${kebab(s.name)} `;
      const applies = command !== null && COMMANDS[command].settings.some((own) => own.name === s.name);
      if (applies) expect(text).toContain(flag);
      else expect(text).not.toContain(flag);
    }
    // The overview names the commands instead.
    if (command === null) for (const name of Object.keys(COMMANDS)) expect(text).toContain(`  ${name} `);
  });

  it('accepts plan-only flags for plan and refuses them for the sidecar', () => {
    const c = load({ argv: ['plan', '--server-version', '8.4.3', '--gtid-mode', 'OFF'], env: { BACKUP_TOKEN: undefined } });
    expect(c.offlineServer).toMatchObject({ version: { flavor: 'mysql', major: 8, minor: 4 }, gtidMode: false });
    expect(load({ argv: ['plan', '--server-version', '11.4.2', '--flavor', 'mariadb'] }).offlineServer).toMatchObject({
      version: { flavor: 'mariadb', major: 11 },
      gtidMode: true,
    });
    expect(configError(() => load({ argv: ['sidecar', '--server-version', '8.4.3'] }))).toContain('server-version');
  });

  it.each([
    ['REPLICATION_MODE', ['plan'], { REPLICATION_MODE: 'both' }],
    ['SERVER_VERSION', ['plan', '--server-version', 'eight'], {}],
    ['FLAVOR', ['plan', '--server-version', '8.4.3', '--flavor', 'percona'], {}],
    ['GTID_MODE', ['plan', '--server-version', '8.4.3', '--gtid-mode', 'MAYBE'], {}],
    ['FLAVOR', ['plan', '--flavor', 'mysql'], {}],
  ] as const)('names %s when a plan setting is invalid', (name, argv, env) => {
    expect(configError(() => load({ argv: [...argv], env }))).toContain(name);
  });

  it('shows help even when the rest of the configuration is invalid', () => {
    expect(() => load({ argv: ['sidecar', '--help'], hostname: 'no-ordinal', env: { MYSQL_PORT: 'x' } })).toThrow(HelpRequested);
  });
});

describe('loadConfig tool lookup', () => {
  it('prefers xtrabackup/xbstream over mariadb-backup/mbstream, whatever the PATH order', () => {
    const c = load({
      argv: ['init'],
      env: { PATH: '/opt/maria/bin:/opt/percona/bin' },
      executables: new Set([
        '/opt/maria/bin/mariadb-backup',
        '/opt/maria/bin/mbstream',
        '/opt/percona/bin/xtrabackup',
        '/opt/percona/bin/xbstream',
      ]),
    });
    expect(c.tools.backup).toBe('/opt/percona/bin/xtrabackup');
    expect(c.tools.stream).toBe('/opt/percona/bin/xbstream');
  });

  it('falls back to mariadb-backup/mbstream', () => {
    const c = load({ argv: ['init'] });
    expect(c.tools.backup).toBe('/usr/bin/mariadb-backup');
    expect(c.tools.stream).toBe('/usr/bin/mbstream');
  });

  it('takes the first PATH directory holding a tool', () => {
    const c = load({
      env: { PATH: '/a:/b' },
      executables: new Set(['/a/mariadb-backup', '/b/mariadb-backup']),
    });
    expect(c.tools.backup).toBe('/a/mariadb-backup');
  });

  it('uses an explicit XTRABACKUP_BIN / XBSTREAM_BIN path', () => {
    const c = load({
      argv: ['init'],
      env: { XTRABACKUP_BIN: '/custom/xb', XBSTREAM_BIN: '/custom/xbs' },
      executables: new Set(['/custom/xb', '/custom/xbs', ...MARIADB_TOOLS]),
    });
    expect(c.tools.backup).toBe('/custom/xb');
    expect(c.tools.stream).toBe('/custom/xbs');
  });

  it('looks a bare XTRABACKUP_BIN name up on PATH', () => {
    const c = load({ env: { XTRABACKUP_BIN: 'mariabackup' }, executables: new Set(['/usr/bin/mariabackup']) });
    expect(c.tools.backup).toBe('/usr/bin/mariabackup');
  });

  it('refuses an explicit XTRABACKUP_BIN that is not executable, even when another tool is on PATH', () => {
    expect(configError(() => load({ env: { XTRABACKUP_BIN: '/nowhere/xtrabackup' } }))).toContain('XTRABACKUP_BIN');
  });

  // init decompresses in the agent without zstd; the sidecar serves backups asked for zstd raw.
  it.each(['init', 'sidecar'] as const)('finds zstd on PATH for %s, and takes its absence as no zstd, not as an error', (command) => {
    const found = load({ argv: [command], env: { PATH: '/usr/bin' }, executables: new Set(['/usr/bin/zstd', ...MARIADB_TOOLS]) });
    expect(found.command === command && found.tools.zstd).toBe('/usr/bin/zstd');
    const none = load({ argv: [command], env: { PATH: '/usr/bin' }, executables: new Set(MARIADB_TOOLS) });
    expect(none.command === command && none.tools.zstd).toBe('');
    expect(configError(() => load({ argv: [command], env: { ZSTD_BIN: '/nowhere/zstd' }, executables: new Set(MARIADB_TOOLS) }))).toContain('ZSTD_BIN="/nowhere/zstd" is not an executable file');
  });

  it('refuses an explicit XBSTREAM_BIN that is not executable', () => {
    expect(configError(() => load({ argv: ['init'], env: { XBSTREAM_BIN: '/nowhere/xbstream' } }))).toContain('XBSTREAM_BIN');
  });

  it('needs a backup tool for the sidecar', () => {
    expect(configError(() => load({ executables: new Set() }))).toMatch(/backup tool/);
  });

  it('needs a stream tool for init on a replica', () => {
    expect(configError(() => load({ argv: ['init'], executables: new Set(['/usr/bin/mariadb-backup']) }))).toMatch(
      /stream tool/,
    );
  });

  it('needs no tools for init on the primary', () => {
    const c = load({ argv: ['init'], hostname: 'mysql-0', executables: new Set() });
    expect(c.tools.backup).toBe('');
    expect(c.tools.stream).toBe('');
  });
});

describe('loadConfig clone source, empty primary and readiness settings', () => {
  it.each([
    ['defaults', ['init'], {}, { lag: 60, peers: { statusTimeoutMs: 3000, probeCount: 5 }, start: 'refuse', ready: 30 }],
    [
      'environment and flags',
      ['init', '--primary-empty-start', 'allow'],
      { CLONE_MAX_LAG: '5', PEER_STATUS_TIMEOUT: '1', PEER_PROBE_COUNT: '9', READY_MAX_LAG: '0' },
      { lag: 5, peers: { statusTimeoutMs: 1000, probeCount: 9 }, start: 'allow', ready: 0 },
    ],
  ] as const)('reads lag limits, peer probing and PRIMARY_EMPTY_START: %s', (_what, argv, env, want) => {
    const c = load({ argv: [...argv], env });
    expect(c.cloneSource).toEqual({ choice: { kind: 'auto' }, maxLagSeconds: want.lag });
    expect(c.peers).toEqual(want.peers);
    expect(c.primaryEmptyStart).toBe(want.start);
    expect(load({ env }).readyMaxLagSeconds).toBe(want.ready);
  });

  it.each([
    ['previous', { kind: 'previous' }],
    ['primary', { kind: 'primary' }],
    ['mysql-2.mysql', { kind: 'host', host: 'mysql-2.mysql' }],
  ] as const)('reads CLONE_SOURCE=%s', (value, choice) => {
    expect(load({ argv: ['init'], env: { CLONE_SOURCE: value } }).cloneSource.choice).toEqual(choice);
  });

  it('needs the token and the tools at ordinal 0 only when it may recover from a replica', () => {
    expect(load({ argv: ['init'], hostname: 'mysql-0', env: { BACKUP_TOKEN: undefined, PRIMARY_EMPTY_START: 'allow' }, executables: new Set() }).backup.token).toBeNull();
    expect(configError(() => load({ argv: ['init'], hostname: 'mysql-0', env: { BACKUP_TOKEN: undefined, PRIMARY_EMPTY_START: 'recover' } }))).toContain(
      'BACKUP_TOKEN',
    );
    expect(configError(() => load({ argv: ['init'], hostname: 'mysql-0', env: { PRIMARY_EMPTY_START: 'recover' }, executables: new Set() }))).toContain(
      'backup tool',
    );
  });

  it('reads the replicas\' volume claims from the Kubernetes API at ordinal 0 by default; a replica never reads them', () => {
    expect(load({ argv: ['init'], hostname: 'mysql-0', env: { KUBERNETES_SERVICE_PORT: '6443' } }).volumeClaims).toEqual({
      kind: 'kubernetes',
      template: 'data',
      api: { host: '10.96.0.1', port: 6443, serviceAccountDir: '/var/run/secrets/kubernetes.io/serviceaccount' },
    });
    expect(load({ argv: ['init'], hostname: 'mysql-0', env: { KUBERNETES_SERVICE_HOST: 'fd00:10:96::1', VOLUME_CLAIM_TEMPLATE: 'mysql-data' } }).volumeClaims).toMatchObject({
      template: 'mysql-data',
      api: { host: 'fd00:10:96::1', port: 443 },
    });
    expect(load({ argv: ['init'], hostname: 'mysql-0', env: { VOLUME_CLAIMS: 'none', KUBERNETES_SERVICE_HOST: undefined } }).volumeClaims).toEqual({ kind: 'none' });
    expect(load({ argv: ['init'], hostname: 'mysql-2', env: { KUBERNETES_SERVICE_HOST: undefined } }).volumeClaims).toBeNull();
  });

  it('refuses, naming the fix, an ordinal 0 told to read the claims without the API\'s address, and bad values', () => {
    expect(configError(() => load({ argv: ['init'], hostname: 'mysql-0', env: { KUBERNETES_SERVICE_HOST: undefined } }))).toBe(
      "KUBERNETES_SERVICE_HOST is not set: ordinal 0 reads the replicas' volume claims from the Kubernetes API (VOLUME_CLAIMS=kubernetes), whose address the kubelet sets; outside Kubernetes set VOLUME_CLAIMS=none",
    );
    const lines = configError(() =>
      load({ argv: ['init'], hostname: 'mysql-0', env: { VOLUME_CLAIMS: 'k8s', VOLUME_CLAIM_TEMPLATE: 'Data', KUBERNETES_SERVICE_HOST: 'api;rm', KUBERNETES_SERVICE_PORT: '0', SERVICE_ACCOUNT_DIR: 'sa' } }),
    ).split('\n');
    expect(lines).toHaveLength(5);
    for (const name of ['VOLUME_CLAIMS=', 'VOLUME_CLAIM_TEMPLATE=', 'KUBERNETES_SERVICE_HOST=', 'KUBERNETES_SERVICE_PORT=', 'SERVICE_ACCOUNT_DIR=']) {
      expect(lines.filter((l) => l.startsWith(name))).toHaveLength(1);
    }
  });

  it('accepts --clone-source for init only and --ready-max-lag for the sidecar only', () => {
    expect(load({ argv: ['init', '--clone-source', 'primary'] }).cloneSource.choice).toEqual({ kind: 'primary' });
    expect(configError(() => load({ argv: ['sidecar', '--clone-source', 'primary'] }))).toContain('clone-source');
    expect(load({ argv: ['sidecar', '--ready-max-lag', '10'] }).readyMaxLagSeconds).toBe(10);
    expect(configError(() => load({ argv: ['init', '--ready-max-lag', '10'] }))).toContain('ready-max-lag');
  });
});

describe('status settings', () => {
  it('asks ordinals 0..2 of the pod\'s own StatefulSet on the agents\' port, and prints a table once', () => {
    const c = load({ argv: ['status'], hostname: 'db-1', env: { SERVICE_NAME: 'db' } });
    expect(c).toMatchObject({ podCount: 3, port: 3307, timeoutMs: 3000, logLevel: 'warn' });
    expect(c.output).toEqual({ json: false, watch: false, intervalMs: 2000, noColor: false });
    expect(hostOf(c.peerHosts, 4)).toBe('db-4.db');
  });

  it('takes --json and --watch as flags without a value, never from the environment', () => {
    const c = load({ argv: ['status', '--json', '--watch', '--watch-interval', '5', '--pod-count', '7'], env: { JSON: '', WATCH: '' } });
    expect(c.output).toMatchObject({ json: true, watch: true, intervalMs: 5000 });
    expect(c.podCount).toBe(7);
    expect(load({ argv: ['status'], env: { JSON: 'true', WATCH: '1' } }).output).toMatchObject({ json: false, watch: false });
    expect(configError(() => load({ argv: ['status', '--json=yes'] }))).toContain("'--json' does not take an argument");
  });

  it('turns colour off for any non-empty NO_COLOR (no-color.org), or --no-color', () => {
    expect(load({ argv: ['status'], env: { NO_COLOR: '1' } }).output.noColor).toBe(true);
    expect(load({ argv: ['status'], env: { NO_COLOR: '' } }).output.noColor).toBe(false);
    expect(load({ argv: ['status', '--no-color'] }).output.noColor).toBe(true);
  });

  it('runs on a laptop with a template without {set}, and says what to set when the template needs it', () => {
    const c = load({ argv: ['status', '--peer-host-template', '127.0.0.1{ordinal}'], hostname: 'laptop' });
    expect(c).toMatchObject({ podName: 'laptop', ordinal: null, role: null });
    expect(hostOf(c.peerHosts, 2)).toBe('127.0.0.12');
    const message = configError(() => load({ argv: ['status'], hostname: 'laptop' }));
    expect(message).toBe(
      'PEER_HOST_TEMPLATE="{set}-{ordinal}.{service}" needs the StatefulSet\'s name, but POD_NAME="laptop" has no ordinal: set POD_NAME (e.g. mysql-0), or a template without {set} (e.g. 127.0.0.1{ordinal} for port-forwards)',
    );
  });

  it('reports every bad setting in one pass', () => {
    const lines = configError(() => load({ argv: ['status', '--pod-count', '0', '--watch-interval', 'x', '--peer-host-template', 'bad host {ordinal}'] })).split('\n');
    expect(lines).toHaveLength(3);
    for (const name of ['POD_COUNT', 'WATCH_INTERVAL', 'PEER_HOST_TEMPLATE']) expect(lines.filter((l) => l.includes(name))).toHaveLength(1);
  });
});

describe('loadConfig server-id range', () => {
  // server_id is a 32-bit unsigned value; a larger one is clamped by mysqld, so two pods would share it.
  it('never yields a server-id above 4294967295', () => {
    let serverId: number | undefined;
    try {
      serverId = load({ hostname: 'mysql-200000', env: { SERVER_ID_OFFSET: '4294867295' } }).serverId;
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain('SERVER_ID_OFFSET');
      return;
    }
    expect(serverId).toBeLessThanOrEqual(4294967295);
  });
});

describe('settings per command', () => {
  it.each([
    ['init', 'mysql-1'],
    ['init', 'mysql-0'],
    ['sidecar', 'mysql-1'],
    ['plan', 'mysql-2'],
    ['status', 'mysql-0'],
    ['status', 'laptop'],
  ] as const)('%s on %s reads only declared settings, and every declared one is read', (command, hostname) => {
    const spec = COMMANDS[command];
    const env = { PATH: '/usr/bin', BACKUP_TOKEN: TOKEN, SERVER_VERSION: '8.4.3', KUBERNETES_SERVICE_HOST: '10.96.0.1', ...(hostname === 'laptop' ? { PEER_HOST_TEMPLATE: '127.0.0.1{ordinal}' } : {}) };
    const reader = new SettingsReader(spec.settings, {}, env, '/');
    const read = vi.spyOn(reader, 'raw');
    // An undeclared read throws, so nothing beyond the table can be read.
    spec.build(reader, { argv: [command], env: {}, hostname, isExecutable: (p) => MARIADB_TOOLS.has(p) });
    expect(reader.problems).toEqual([]);
    expect(new Set(read.mock.calls.map(([s]) => s.name))).toEqual(new Set(spec.settings.map((s) => s.name)));
  });

  it('refuses a flag of another command and names it', () => {
    expect(configError(() => load({ argv: ['plan', '--backup-bind', '0.0.0.0'] }))).toContain('backup-bind');
    expect(configError(() => load({ argv: ['init', '--mysql-host', 'db'] }))).toContain('mysql-host');
  });

  it('carries values, not functions', () => {
    const functions = (v: unknown): boolean =>
      typeof v === 'function' || (v !== null && typeof v === 'object' && Object.values(v).some(functions));
    for (const argv of [['init'], ['sidecar'], ['plan'], ['status']] as const) expect(functions(load({ argv }))).toBe(false);
  });

  it('reports every problem in one pass, one line each', () => {
    const message = configError(() => load({ env: { MYSQL_PORT: '0', LOG_LEVEL: 'loud', BACKUP_TOKEN: undefined, DATA_DIR: 'data' } }));
    const lines = message.split('\n');
    expect(lines).toHaveLength(4);
    for (const name of ['MYSQL_PORT', 'LOG_LEVEL', 'BACKUP_TOKEN', 'DATA_DIR']) expect(lines.filter((l) => l.includes(name))).toHaveLength(1);
  });

  it('resolves a relative directory given as a flag against the working directory, and refuses one from the environment', () => {
    expect(load({ argv: ['plan', '--data-dir', './clone'], cwd: '/work/here' }).dataDir).toBe('/work/here/clone');
    expect(load({ argv: ['init', '--conf-dir=conf.d/'], cwd: '/tmp' }).confDir).toBe('/tmp/conf.d');
    expect(configError(() => load({ argv: ['plan'], env: { DATA_DIR: './clone' }, cwd: '/work/here' }))).toContain('DATA_DIR');
  });
});

describe('README, Configuration', () => {
  it('has a row for every setting, naming the commands that read it', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const rows = readme.split('\n').filter((l) => /^\| [A-Z][A-Z0-9_]*( \/ [A-Z][A-Z0-9_]*)* \| /.test(l));
    for (const setting of new Set(Object.values(COMMANDS).flatMap((c) => c.settings))) {
      const row = rows.find((r) => r.split(' | ')[0]!.slice(2).split(' / ').includes(setting.name));
      expect(row, setting.name).toBeDefined();
      const names = row!.split(' | ')[0]!.slice(2).split(' / ');
      const commands = Object.keys(COMMANDS) as Command[];
      const readers = commands.filter((c) => COMMANDS[c].settings.some((s) => names.includes(s.name)));
      expect(row!.split(' | ')[1], setting.name).toBe(readers.length === commands.length ? 'all' : readers.join(', '));
    }
  });
});
