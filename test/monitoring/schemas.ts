/**
 * prometheus-operator's kinds, offline: @kubernetes-models/prometheus-operator's compiled JSON
 * schemas check types, required fields and patterns; for unknown fields (which the API server
 * would prune without a word, as it does for every structural CRD) the same package's TypeScript
 * types are used: the document is type-checked as an object literal, whose excess-property check
 * names any field the kind does not have.
 */
import { join } from 'node:path';
import { PodMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import ts from 'typescript';
import type { KubeDoc } from '../manifests/render.js';

const KINDS: Record<string, { model: new (data: never) => { validate(): void }; type: string }> = {
  'monitoring.coreos.com/v1/PodMonitor': { model: PodMonitor, type: 'IPodMonitor' },
  'monitoring.coreos.com/v1/PrometheusRule': { model: PrometheusRule, type: 'IPrometheusRule' },
};

export const isOperatorKind = (doc: KubeDoc) => `${doc.apiVersion}/${doc.kind}` in KINDS;

/** Problems with prometheus-operator documents, one sentence each (empty: fine). */
export function operatorSchemaProblems(docs: readonly KubeDoc[]): string[] {
  const problems: string[] = [];
  const literals: string[] = [];
  docs.forEach((doc, i) => {
    const where = `${doc.kind}/${doc.metadata?.name}`;
    const kind = KINDS[`${doc.apiVersion}/${doc.kind}`];
    if (!kind) return problems.push(`${where}: ${doc.apiVersion} ${doc.kind} is not a prometheus-operator kind these checks know`);
    try {
      new kind.model(doc as never).validate();
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
    }
    literals.push(`// ${where}\nexport const doc${i}: ${kind.type} = ${JSON.stringify(doc, null, 2)};`);
  });
  if (literals.length === 0) return problems;

  // A file beside this one, served from memory, so that the package resolves from node_modules.
  const file = join(import.meta.dirname, '__operator_kinds_check__.ts');
  const source = [`import type { IPodMonitor, IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';`, ...literals].join('\n');
  const options: ts.CompilerOptions = { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, skipLibCheck: true };
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host);
  const exists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (f) => (f === file ? source : read(f));
  host.fileExists = (f) => f === file || exists(f);
  host.getSourceFile = (f, v, ...rest) => (f === file ? ts.createSourceFile(f, source, v) : getSourceFile(f, v, ...rest));
  const program = ts.createProgram([file], options, host);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    if (d.file?.fileName !== file) continue;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
    const owner = source.split('\n').slice(0, line + 1).reverse().find((l) => l.startsWith('// '))?.slice(3) ?? '?';
    const text = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    const unknown = /known properties, and '"?([^"']+)"?' does not exist/.exec(text);
    problems.push(`${owner}: ${unknown ? `${unknown[1]} is not a field there (line ${line + 1}: ${source.split('\n')[line]!.trim()})` : text}`);
  }
  return problems;
}
