import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ImportGraph, importGraph, layeringProblems } from '../layers.js';

const AGENT = join(import.meta.dirname, '../../agent');
const graph = (edges: Record<string, string[]>): ImportGraph => new Map(Object.entries(edges));

describe('agent/ import graph', () => {
  it('runs only down the layers, with no cycles (type-only and dynamic imports included)', () => {
    const real = importGraph(AGENT);
    expect(real.size).toBeGreaterThan(30);
    // The graph is really read: the entry reaches every side.
    expect(real.get('cli.ts')).toEqual(expect.arrayContaining(['commands.ts', 'init/init.ts', 'sidecar/sidecar.ts', 'mysql/plan.ts']));
    expect(layeringProblems(real)).toEqual([]);
  });

  it('finds an upward import planted in the real graph', () => {
    const planted = new Map(importGraph(AGENT));
    planted.set('core/settings.ts', [...planted.get('core/settings.ts')!, 'mysql/replication-sql.ts']);
    expect(layeringProblems(planted)).toEqual(['core/settings.ts imports mysql/replication-sql.ts: mysql is above core, imports only run down']);
  });

  it('refuses imports between folders of one layer', () => {
    expect(layeringProblems(graph({ 'init/a.ts': ['sidecar/b.ts'], 'sidecar/b.ts': [] }))).toEqual([
      'init/a.ts imports sidecar/b.ts: sidecar is beside init, imports only run down',
    ]);
  });

  it('finds a cycle inside a folder, type-only imports counted', () => {
    const problems = layeringProblems(graph({ 'init/a.ts': ['init/b.ts'], 'init/b.ts': ['init/c.ts'], 'init/c.ts': ['init/a.ts'] }));
    expect(problems).toEqual(['import cycle: init/a.ts -> init/b.ts -> init/c.ts -> init/a.ts']);
  });

  it('reads type-only and dynamic imports from the source', async () => {
    const { mkdtemp, mkdir, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const root = await mkdtemp(join(tmpdir(), 'layers-'));
    try {
      await mkdir(join(root, 'core'));
      await mkdir(join(root, 'init'));
      await writeFile(join(root, 'core/a.ts'), "import type { B } from '../init/b.js';\nexport type A = B;\n");
      await writeFile(join(root, 'init/b.ts'), "export type B = 1;\nexport const load = () => import('../core/a.js');\n");
      const g = importGraph(root);
      expect(g.get('core/a.ts')).toEqual(['init/b.ts']);
      expect(g.get('init/b.ts')).toEqual(['core/a.ts']);
      expect(layeringProblems(g)).toEqual([
        'core/a.ts imports init/b.ts: init is above core, imports only run down',
        'import cycle: core/a.ts -> init/b.ts -> core/a.ts',
      ]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('names a folder that has no layer yet', () => {
    expect(layeringProblems(graph({ 'vault/s3.ts': [] }))).toEqual(['vault/s3.ts: vault has no layer (add it to test/layers.ts)']);
  });
});
