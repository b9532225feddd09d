// One table of options per command drives everything: flag parsing, the
// environment, the optional JSON file, defaults, validation and --help.
// Sources, lowest first: default < file (--config) < environment < flag.
// The rest of the code only ever sees the validated, typed result.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { z } from 'zod';

export interface OptionSpec<S extends z.ZodType = z.ZodType> {
  /** Kebab-case flag name without the dashes, e.g. "check-interval". */
  flag: string;
  /** Environment variable, e.g. SEMPRE_CHECK_INTERVAL. */
  env: string;
  description: string;
  /** The default as a person would type it; absent means required. */
  default?: string;
  /** A flag that takes no value (--json). */
  switch?: boolean;
  /** A flag that may be given several times; its values are joined with commas. */
  repeatable?: boolean;
  /** Never printed (tokens). */
  secret?: boolean;
  /** Shown in --help after the flag, e.g. "MS" or "NAME". */
  placeholder?: string;
  schema: S;
}

export type OptionSpecs = Record<string, OptionSpec>;
export type OptionValues<S extends OptionSpecs> = { [K in keyof S]: z.output<S[K]['schema']> };

export interface CommandSpec<S extends OptionSpecs> {
  /** Executable name, e.g. "sempre-agent". */
  command: string;
  /** Prefix of every error, e.g. "agent" → "agent.port: …". */
  section: string;
  summary: string;
  options: S;
  /** Cross-field rules: return a message naming the field, or undefined. */
  rules?: Array<(values: OptionValues<S>) => { field: keyof S & string; message: string } | undefined>;
  examples: string[];
  notes?: string[];
}

/** Every problem found, one line each, all reported at once. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export type LoadResult<S extends OptionSpecs> =
  | { kind: 'help'; text: string }
  | { kind: 'config'; values: OptionValues<S>; printConfig: boolean };

const CONFIG_FLAG = 'config';

export function loadOptions<S extends OptionSpecs>(
  spec: CommandSpec<S>,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): LoadResult<S> {
  const section = spec.section;
  const parseOptions: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
    [CONFIG_FLAG]: { type: 'string' },
    'print-config': { type: 'boolean' },
  };
  for (const option of Object.values(spec.options)) {
    parseOptions[option.flag] = { type: option.switch ? 'boolean' : 'string', ...(option.repeatable ? { multiple: true } : {}) };
  }

  let flags: Record<string, string | boolean | undefined>;
  try {
    const parsed = parseArgs({ args: [...argv], options: parseOptions, strict: true, allowPositionals: false });
    flags = Object.fromEntries(Object.entries(parsed.values).map(([key, value]) => [key, Array.isArray(value) ? value.join(',') : value])) as Record<string, string | boolean | undefined>;
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new ConfigError([`${section}: ${message?.replace(/\. To specify.*$/, '')} (see ${spec.command} --help)`]);
  }
  if (flags.help) return { kind: 'help', text: renderHelp(spec) };

  const fromFile = readConfigFile(spec, (flags[CONFIG_FLAG] as string | undefined) ?? env.SEMPRE_CONFIG);
  const problems: string[] = [...fromFile.problems];
  const values: Record<string, unknown> = {};
  for (const [key, option] of Object.entries(spec.options)) {
    const sources: Array<[unknown, string]> = [
      [option.default, 'the default'],
      [fromFile.values[key], `${fromFile.path} key "${key}"`],
      [env[option.env], `environment ${option.env}`],
      [flags[option.flag], `--${option.flag}`],
    ];
    const chosen = sources.filter(([value]) => value !== undefined).at(-1);
    if (!chosen) {
      problems.push(`${section}.${key}: is required (set --${option.flag} or ${option.env})`);
      continue;
    }
    const result = option.schema.safeParse(chosen[0]);
    if (result.success) values[key] = result.data;
    else problems.push(`${section}.${key}: ${result.error.issues[0]?.message ?? 'is invalid'}, from ${chosen[1]}`);
  }
  if (problems.length === 0) {
    for (const rule of spec.rules ?? []) {
      const broken = rule(values as OptionValues<S>);
      if (broken) problems.push(`${section}.${broken.field}: ${broken.message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { kind: 'config', values: values as OptionValues<S>, printConfig: Boolean(flags['print-config']) };
}

/** The options as JSON a person or script can read, secrets masked. */
export function describeOptions<S extends OptionSpecs>(spec: CommandSpec<S>, values: OptionValues<S>): string {
  const shown: Record<string, unknown> = {};
  for (const [key, option] of Object.entries(spec.options as OptionSpecs)) {
    const value = (values as Record<string, unknown>)[key];
    shown[key] = option.secret && value ? '(set)' : value instanceof URL ? value.href : value;
  }
  return JSON.stringify(shown, null, 2);
}

function readConfigFile<S extends OptionSpecs>(spec: CommandSpec<S>, path: string | undefined): {
  values: Record<string, unknown>;
  problems: string[];
  path: string;
} {
  if (!path) return { values: {}, problems: [], path: 'config file' };
  const section = spec.section;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    const reason = error instanceof SyntaxError ? `is not valid JSON (${error.message})` : `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
    return { values: {}, problems: [`${section}.config: ${path} ${reason}`], path };
  }
  // A file may hold several commands' sections: { "agent": {...}, "balancer": {...} }.
  const root = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as Record<string, unknown> : undefined;
  const body = root && section in root ? root[section] : root;
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    return { values: {}, problems: [`${section}.config: ${path} must hold a JSON object of options`], path };
  }
  const byFlag = new Map(Object.entries(spec.options as OptionSpecs).map(([key, option]) => [option.flag, key]));
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [rawKey, value] of Object.entries(body)) {
    const key = rawKey in spec.options ? rawKey : byFlag.get(rawKey);
    if (key) values[key] = value;
    else problems.push(`${section}.${rawKey}: unknown option in ${path} (see ${spec.command} --help)`);
  }
  return { values, problems, path };
}

export function renderHelp<S extends OptionSpecs>(spec: CommandSpec<S>): string {
  const rows = Object.values(spec.options as OptionSpecs).map((option) => {
    const flag = `--${option.flag}${option.switch ? '' : ` ${option.placeholder ?? 'VALUE'}`}`;
    const fallback = option.default === undefined ? 'required' : option.default === '' ? 'default: none' : `default: ${option.default}`;
    return { flag, text: `${option.description} (${option.repeatable ? 'repeatable; ' : ''}${fallback}; env ${option.env})` };
  });
  rows.push(
    { flag: `--${CONFIG_FLAG} FILE`, text: 'JSON file of options, keys as in the error messages (env SEMPRE_CONFIG)' },
    { flag: '--print-config', text: 'print the validated options as JSON and exit without starting' },
    { flag: '-h, --help', text: 'show this help' },
  );
  const width = Math.max(...rows.map((row) => row.flag.length)) + 2;
  return [
    `${spec.command} — ${spec.summary}`,
    '',
    `Usage: ${spec.command} [options]`,
    '',
    'Options (flag > environment > config file > default):',
    ...rows.map((row) => `  ${row.flag.padEnd(width)}${row.text}`),
    '',
    'Examples:',
    ...spec.examples.map((example) => `  ${example}`),
    ...(spec.notes?.length ? ['', ...spec.notes] : []),
    '',
  ].join('\n');
}
