/**
 * agent/core/ is the ground everything stands on: settings, errors, logging, retry, files,
 * topology and the durable records. It imports nothing of the agent above it.
 *
 * Settings machinery. Each command declares the settings it reads (a table of `Setting`s; a
 * setting shared by several commands is declared once, beside the code it configures), every
 * setting is an environment variable that a kebab-case flag of the same name overrides, and a
 * command's `build` reads them all through one `SettingsReader`, which collects every problem in
 * one pass. The result is frozen and passed down as a value: nothing else reads the environment.
 */
import { isIPv6 } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from './builtins.js';
import { ConfigError } from './errors.js';

/** Where a value came from: flags are typed by a person in a shell, so relative paths are theirs. */
export interface Origin {
  readonly from: 'env' | 'flag';
  readonly cwd: string;
}

export interface Setting<T> {
  readonly name: string;
  readonly help: string;
  /** The default as --help shows it; absent when there is none. */
  readonly shown?: string;
  /** The value when the variable is unset or empty (and after a problem, so the pass goes on). */
  readonly fallback: T;
  /** A set value to T; throws ConfigError naming the variable and what it expects. */
  readonly parse: (text: string, origin: Origin) => T;
  /** An empty value counts as set (a password may be empty on purpose). */
  readonly keepsEmpty?: boolean;
  /** A flag that takes no value (`--json`); its presence is the text "true". */
  readonly isSwitch?: boolean;
  /** Read from the command line only: options of one run, not of a pod's environment. */
  readonly flagOnly?: boolean;
}

export type AnySetting = Setting<unknown>;

export interface ConfigSources {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly hostname: string;
  /** Relative paths given as flags are resolved against it; process.cwd() when absent. */
  readonly cwd?: string;
  /** Whether an executable exists at a path; injected so tests need not touch PATH. */
  readonly isExecutable?: (path: string) => boolean;
}

/** A command as the CLI knows it: its settings, its help and how its frozen config is built. */
export interface CommandSpec<C> {
  readonly name: string;
  /** What the command does, for its --help. */
  readonly summary: string;
  /** In --help order. */
  readonly settings: readonly AnySetting[];
  readonly build: (read: SettingsReader, sources: ConfigSources) => C;
}

/** Thrown for `--help`: the CLI prints the text and exits 0. */
export class HelpRequested {
  constructor(readonly text: string) {}
}

export const kebab = (name: string) => name.toLowerCase().replaceAll('_', '-');

/** Reads the declared settings of one command and keeps every problem found. */
export class SettingsReader {
  readonly problems: string[] = [];
  private readonly declared: ReadonlySet<string>;

  constructor(
    settings: readonly AnySetting[],
    private readonly flags: Readonly<Record<string, string | boolean | undefined>>,
    private readonly env: Readonly<Record<string, string | undefined>>,
    private readonly cwd: string,
  ) {
    this.declared = new Set(settings.map((s) => s.name));
  }

  /** The raw text of a declared setting (flag first), undefined when unset or empty. */
  raw(setting: AnySetting): { text: string; origin: Origin } | undefined {
    if (!this.declared.has(setting.name)) {
      // A programming error, not a user's: --help would not list what is read.
      throw new Error(`setting ${setting.name} is read but not declared by this command`);
    }
    const set = (v: unknown): v is string => typeof v === 'string' && (v !== '' || setting.keepsEmpty === true);
    const flag = this.flags[kebab(setting.name)];
    if (flag === true) return { text: 'true', origin: { from: 'flag', cwd: this.cwd } };
    if (set(flag)) return { text: flag, origin: { from: 'flag', cwd: this.cwd } };
    if (setting.flagOnly) return undefined;
    const env = this.env[setting.name];
    if (set(env)) return { text: env, origin: { from: 'env', cwd: this.cwd } };
    return undefined;
  }

  get<T>(setting: Setting<T>): T {
    const raw = this.raw(setting);
    if (raw === undefined) return setting.fallback;
    try {
      return setting.parse(raw.text, raw.origin);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.problems.push(err.message);
      return setting.fallback;
    }
  }

  isSet(setting: AnySetting): boolean {
    return this.raw(setting) !== undefined;
  }

  /** Records a problem that involves several settings (or none set at all). */
  problem(message: string): void {
    this.problems.push(message);
  }
}

/** One problem per line, so an operator sees all of them in one start. */
export class ConfigProblems extends ConfigError {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

export function helpText(spec: Pick<CommandSpec<unknown>, 'name' | 'summary' | 'settings'>): string {
  const lines = [
    `Usage: mysql-agent ${spec.name} [--flag value ...]`,
    '',
    spec.summary,
    '',
    'Settings: environment variable, or the flag of the same name in kebab-case (the flag wins).',
  ];
  for (const s of spec.settings) {
    const def = s.shown === undefined ? '' : ` [default: ${s.shown}]`;
    lines.push(`  ${(s.flagOnly ? '' : s.name).padEnd(22)} --${kebab(s.name).padEnd(22)} ${s.help}${def}`);
  }
  return lines.join('\n');
}

/** The text of `mysql-agent --help`: the commands, each with its summary's first line. */
export function overviewText(commands: Readonly<Record<string, CommandSpec<unknown>>>): string {
  const names = Object.keys(commands);
  return [
    `Usage: mysql-agent <${names.join('|')}> [--flag value ...]`,
    '',
    ...Object.values(commands).map((c) => `  ${c.name.padEnd(Math.max(...names.map((n) => n.length)))}  ${c.summary.split('\n')[0]}`),
    '',
    'mysql-agent <command> --help lists the settings that command reads.',
  ].join('\n');
}

/**
 * Parses `<command> [--flags]` against the commands' tables and builds that command's frozen
 * config. Throws HelpRequested, or ConfigError naming every invalid setting (one per line).
 */
export function loadCommand<C extends object>(commands: Readonly<Record<string, CommandSpec<C>>>, sources: ConfigSources): C {
  const [name, ...rest] = sources.argv;
  const names = Object.keys(commands);
  if (name === undefined) throw new ConfigError(`no command given: run \`mysql-agent ${names.join('`, `')}\` (see --help)`);
  if (name === '--help' || name === '-h') throw new HelpRequested(overviewText(commands));
  const spec = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (spec === undefined) throw new ConfigError(`unknown command "${name}": expected ${names.join(', ')}`);
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const s of spec.settings) options[kebab(s.name)] = { type: s.isSwitch ? 'boolean' : 'string' };
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: [...rest], options, strict: true, allowPositionals: false }).values as typeof flags;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message.split('\n')[0]} (see mysql-agent ${name} --help)`);
  }
  if (flags.help) throw new HelpRequested(helpText(spec));
  const reader = new SettingsReader(spec.settings, flags, sources.env, sources.cwd ?? process.cwd());
  const config = spec.build(reader, sources);
  if (reader.problems.length > 0) throw new ConfigProblems(reader.problems);
  return deepFreeze(config);
}

function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) if (v !== null && typeof v === 'object') deepFreeze(v as object);
  return Object.freeze(value);
}

// The kinds of setting. Each message names the variable and what it expects.

export function text(name: string, help: string, fallback: string, shown: string | undefined = fallback || undefined): Setting<string> {
  return { name, help, shown, fallback, parse: (t) => t };
}

/** A flag without a value, for one run (`--json`): false unless given. */
export function switchFlag(name: string, help: string): Setting<boolean> {
  return { name, help, fallback: false, parse: () => true, isSwitch: true, flagOnly: true };
}

/** A secret: never shown in a message, --help or a log. */
export function secret(name: string, help: string, shown?: string): Setting<string | null> {
  return { name, help, shown, fallback: null, parse: (t) => t, keepsEmpty: true };
}

export function oneOf<const T extends string>(name: string, help: string, values: readonly T[], fallback: T): Setting<T> {
  return {
    name,
    help,
    shown: fallback,
    fallback,
    parse: (t) => {
      if (!(values as readonly string[]).includes(t)) throw new ConfigError(`${name}="${t}" is invalid: expected ${values.join(', ')}`);
      return t as T;
    },
  };
}

/** A whole number in [min, max], optionally scaled (seconds to milliseconds: 1000). */
export function wholeNumber(name: string, help: string, fallback: number, min: number, max: number, scale = 1): Setting<number> {
  return {
    name,
    help,
    shown: String(fallback),
    fallback: fallback * scale,
    parse: (t) => {
      if (!/^[0-9]+$/.test(t) || Number(t) < min || Number(t) > max) {
        throw new ConfigError(`${name}="${t}" is invalid: expected a whole number from ${min} to ${max}`);
      }
      return Number(t) * scale;
    },
  };
}

/** A directory: absolute, or relative to the working directory when given as a flag. */
export function directory(name: string, help: string, fallback: string): Setting<string> {
  return {
    name,
    help,
    shown: fallback,
    fallback,
    parse: (t, origin) => {
      if (!isAbsolute(t) && origin.from === 'env') {
        throw new ConfigError(`${name}="${t}" is invalid: expected an absolute path (a relative one is accepted only as --${kebab(name)})`);
      }
      const path = resolve(origin.cwd, t);
      return path.replace(/\/+$/, '') || '/';
    },
  };
}

const HOST = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
/** An IPv6 literal is checked by net.isIPv6; this keeps out zones (`%eth0`) and brackets. */
const IPV6_CHARACTERS = /^[0-9A-Fa-f:.]{2,45}$/;

/**
 * Whether `value` is a host name, an IPv4 address or a bare IPv6 literal: letters, digits,
 * `-`, `.` and `:` only, so it is safe in SQL (escaped by the driver anyway) and as one
 * command-line argument (`--host=…`).
 */
export const isHost = (value: string) => HOST.test(value) || (IPV6_CHARACTERS.test(value) && isIPv6(value));

export function checkHost(name: string, value: string): string {
  if (!isHost(value)) throw new ConfigError(`${name}="${value}" is invalid: expected a host name, an IPv4 address or an IPv6 address (without brackets)`);
  return value;
}

export function host(name: string, help: string, fallback: string, shown: string = fallback): Setting<string> {
  return { name, help, shown, fallback, parse: (t) => checkHost(name, t) };
}

/** An account name that goes into SQL and onto command lines: no quotes, spaces or separators. */
export function account(name: string, help: string, fallback: string | null, shown?: string): Setting<string | null> {
  return {
    name,
    help,
    shown: shown ?? fallback ?? undefined,
    fallback,
    parse: (t) => {
      if (!/^[^\s'"`\\;]{1,80}$/.test(t)) {
        throw new ConfigError(`${name} is invalid: expected 1-80 characters without spaces, quotes, backslashes or semicolons`);
      }
      return t;
    },
  };
}
