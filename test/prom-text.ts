/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for tests: every line must
 * be a HELP, a TYPE or a sample of a declared family, or the parse fails.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

export interface Exposition {
  readonly types: Record<string, string>;
  readonly help: Record<string, string>;
  readonly samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: -?[0-9]+)?$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** As Prometheus reads values (Go's ParseFloat): NaN and Inf in any letter case (prom-client writes `Nan`). */
function parseValue(text: string, line: string): number {
  if (/^nan$/i.test(text)) return Number.NaN;
  if (/^\+?inf$/i.test(text)) return Infinity;
  if (/^-inf$/i.test(text)) return -Infinity;
  if (!/^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(text)) throw new Error(`bad value in: ${line}`);
  return Number(text);
}

function familyOf(name: string, types: Record<string, string>): string | undefined {
  if (types[name]) return name;
  const base = name.replace(/_(bucket|sum|count|total|created)$/, '');
  return types[base] ? base : undefined;
}

export function parseExposition(text: string): Exposition {
  const types: Record<string, string> = {};
  const help: Record<string, string> = {};
  const samples: Sample[] = [];
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line))) {
      help[m[1]!] = m[2]!;
    } else if ((m = new RegExp(`^# TYPE (${NAME}) (\\w+)$`).exec(line))) {
      if (!TYPES.has(m[2]!)) throw new Error(`unknown type in: ${line}`);
      if (types[m[1]!]) throw new Error(`second TYPE for ${m[1]}`);
      types[m[1]!] = m[2]!;
    } else if (line.startsWith('#')) {
      continue;
    } else if ((m = SAMPLE.exec(line))) {
      const name = m[1]!;
      if (!familyOf(name, types)) throw new Error(`sample of an undeclared family: ${line}`);
      const labels: Record<string, string> = {};
      let rest = m[2] ?? '';
      while (rest !== '') {
        const l = LABEL.exec(rest);
        if (!l) throw new Error(`bad labels in: ${line}`);
        labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        rest = rest.slice(l[0].length);
      }
      samples.push({ name, labels, value: parseValue(m[3]!, line) });
    } else {
      throw new Error(`not a Prometheus text line: ${line}`);
    }
  }
  return { types, help, samples };
}

/** The value of the one sample `name` (matching `labels`), or undefined. */
export function valueOf(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name}`);
  return found[0]?.value;
}
