/**
 * The import graph of agent/ (type-only and dynamic imports included, read by TypeScript's own
 * pre-processor) and the rules it must keep: imports only run down the layers, folders of one
 * layer do not import each other, and no file imports itself back through others.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** Folder → layer ('.': the entry and its command table); higher may import lower. A new folder must be placed here. */
export const LAYERS: Readonly<Record<string, number>> = {
  '.': 5,
  backup: 4,
  init: 3,
  sidecar: 3,
  status: 3,
  // Above stream/: a stored backup's form is the stream's Compression.
  store: 2,
  cluster: 1,
  mysql: 1,
  stream: 1,
  core: 0,
};

/** file (relative to agent/) → the agent files it imports. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

export function importGraph(root: string): ImportGraph {
  const files = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).sort();
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(join(root, file), 'utf8'), true, true);
    const targets = info.importedFiles
      .map((i) => i.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => relative(root, resolve(root, dirname(file), spec.replace(/\.js$/, '.ts'))));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

const unitOf = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : '.');

/** Every broken rule, one line each; empty when the graph is layered and acyclic. */
export function layeringProblems(graph: ImportGraph, layers: Readonly<Record<string, number>> = LAYERS): string[] {
  const problems: string[] = [];
  for (const [file, targets] of graph) {
    const from = unitOf(file);
    if (layers[from] === undefined) problems.push(`${file}: ${from} has no layer (add it to test/layers.ts)`);
    for (const target of targets) {
      if (!graph.has(target)) problems.push(`${file} imports ${target}, which does not exist`);
      const to = unitOf(target);
      if (to === from || layers[from] === undefined || layers[to] === undefined) continue;
      if (layers[to]! >= layers[from]!) {
        problems.push(`${file} imports ${target}: ${to} is ${layers[to] === layers[from] ? 'beside' : 'above'} ${from}, imports only run down`);
      }
    }
  }
  // Cycles, by depth-first search: a back edge closes one.
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') problems.push(`import cycle: ${[...path.slice(path.indexOf(next)), next].join(' -> ')}`);
      else if (!state.has(next) && graph.has(next)) visit(next);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return problems;
}
