/** The owner of child processes: what a child inherits from the agent's environment. */
import { describe, expect, it } from 'vitest';
import { childEnvironment } from '../../../agent/stream/child.js';

describe('childEnvironment', () => {
  const agent = {
    PATH: '/usr/bin:/bin',
    HOME: '/var/lib/mysql',
    TMPDIR: '/tmp',
    TZ: 'UTC',
    LANG: 'C.UTF-8',
    LC_ALL: 'C',
    LC_MESSAGES: 'C',
    BACKUP_TOKEN: 'secret-token-0123456789',
    MYSQL_PASSWORD: 'agent-pw',
    REPLICATION_PASSWORD: 'repl-pw',
    NODE_OPTIONS: '--max-old-space-size=64',
    POD_NAME: 'mysql-1',
    KUBERNETES_SERVICE_HOST: '10.0.0.1',
  };

  it('passes on only where programs are, the home and temp directories, the time zone and the locale', () => {
    expect(childEnvironment(agent, {})).toEqual({
      PATH: '/usr/bin:/bin',
      HOME: '/var/lib/mysql',
      TMPDIR: '/tmp',
      TZ: 'UTC',
      LANG: 'C.UTF-8',
      LC_ALL: 'C',
      LC_MESSAGES: 'C',
    });
  });

  it("adds the child's own variables, which win over inherited ones", () => {
    expect(childEnvironment(agent, { MYSQL_PWD: 'agent-pw', TZ: 'Europe/Berlin' })).toMatchObject({ MYSQL_PWD: 'agent-pw', TZ: 'Europe/Berlin', PATH: '/usr/bin:/bin' });
  });

  it('names match whole: a variable that merely starts or ends like an inherited one is not passed on', () => {
    expect(childEnvironment({ PATHS: 'x', MYPATH: 'y', HOME_TOKEN: 'z', LC_: 'w' }, {})).toEqual({});
  });
});
