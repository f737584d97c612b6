/**
 * What the built agent loads at start, with the node flags of dist/cli.js's `#!` line: the
 * builtins that Node 24 loads in full for an ESM import (agent/core/builtins.ts) must not be
 * imported that way by any command's modules. Measured: undici, http2 and perf_hooks behind an
 * ESM `import 'node:http'` cost each process ~50 ms of its start.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const DIST = join(import.meta.dirname, '../../dist');
const nodeFlags = readFileSync(join(DIST, 'cli.js'), 'utf8').split('\n')[0]!.split(' node ')[1]!.split(' ');

/** The internal modules loaded by importing `modules` of dist in a fresh node. */
function loadedBy(modules: string[], setup = ''): string[] {
  const script = `${setup}\nfor (const m of ${JSON.stringify(modules)}) await import(${JSON.stringify(`${DIST}/`)} + m);\nprocess.stdout.write(JSON.stringify(process.moduleLoadList));`;
  return JSON.parse(execFileSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
}

describe("the agent's start", () => {
  it("loads no undici, whichever command's modules it imports", () => {
    expect(nodeFlags).toContain('--no-turbofan');
    const loaded = loadedBy(['commands.js', 'backup/backup.js', 'backup/list.js', 'backup/verify.js', 'init/init.js', 'init/restore.js', 'init/pitr.js', 'sidecar/sidecar.js', 'status/status.js', 'mysql/plan.js']);
    expect(loaded.length).toBeGreaterThan(100);
    expect(loaded).toContain('NativeModule http');
    expect(loaded.filter((m) => /undici/.test(m))).toEqual([]);
  });
  it('an ESM import of node:http in the same process would load it: the check sees it', () => {
    const loaded = loadedBy(['store/s3.js'], "await import('node:http');");
    expect(loaded).toContain('NativeModule internal/deps/undici/undici');
  });
});
