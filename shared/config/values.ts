// Value schemas shared by every option: each accepts what a person types on
// the command line or in the environment (a string) as well as what a JSON
// config file holds (numbers, arrays, objects), and normalizes it to one type.
// Messages read as the tail of "agent.port: <message>".
import { accessSync, constants, statSync } from 'node:fs';
import { z } from 'zod';
import { parseRoute, type Route } from '../routes.ts';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "250ms", "2s", "1.5m", "1h" or a bare number of milliseconds. */
export function parseDurationMs(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : undefined;
  const match = DURATION.exec(input.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] ?? 1));
}

/** Formats milliseconds the way Consul (Go) durations are written. */
export function formatGoDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function describe(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function shown(input: unknown): string {
  return JSON.stringify(input) ?? String(input);
}

export function duration(min: number, max: number) {
  return z.unknown().transform((input, ctx): number => {
    const ms = typeof input === 'string' || typeof input === 'number' ? parseDurationMs(input) : undefined;
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `must be a duration such as 500ms, 2s or 1m (got ${shown(input)})` });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({ code: 'custom', message: `must be from ${describe(min)} to ${describe(max)} (got ${shown(input)})` });
      return z.NEVER;
    }
    return ms;
  });
}

export function integer(min: number, max: number) {
  return z.unknown().transform((input, ctx): number => {
    const n = typeof input === 'number' ? input : typeof input === 'string' && /^-?\d+$/.test(input.trim()) ? Number(input) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max} (got ${shown(input)})` });
      return z.NEVER;
    }
    return n;
  });
}

export const port = () => integer(1, 65535);

export function boolean() {
  return z.unknown().transform((input, ctx): boolean => {
    if (typeof input === 'boolean') return input;
    if (typeof input === 'string' && /^(true|1|yes|on)$/i.test(input)) return true;
    if (typeof input === 'string' && /^(false|0|no|off)$/i.test(input)) return false;
    ctx.addIssue({ code: 'custom', message: `must be true or false (got ${shown(input)})` });
    return z.NEVER;
  });
}

/** A name Consul and DNS both accept: letters, digits and dashes. */
export function name(what: string) {
  return z.unknown().transform((input, ctx): string => {
    if (typeof input !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(input)) {
      ctx.addIssue({ code: 'custom', message: `must be a ${what} of 1–63 letters, digits, '.', '_' or '-' (got ${shown(input)})` });
      return z.NEVER;
    }
    return input;
  });
}

export function oneOf<const T extends readonly string[]>(choices: T) {
  return z.unknown().transform((input, ctx): T[number] => {
    if (typeof input !== 'string' || !choices.includes(input)) {
      ctx.addIssue({ code: 'custom', message: `must be one of ${choices.join(', ')} (got ${shown(input)})` });
      return z.NEVER;
    }
    return input;
  });
}

/** An IPv4/IPv6 address or host name; empty means "let Consul use the node's address". */
/** A host name, an IPv4 address or an IPv6 address (without brackets). */
export function isHostName(value: string): boolean {
  return value.length <= 253 && (/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(value) || (/^[0-9a-fA-F:.]+$/.test(value) && value.includes(':')));
}

export function host({ allowEmpty }: { allowEmpty: boolean }) {
  return z.unknown().transform((input, ctx): string => {
    if (typeof input !== 'string') {
      ctx.addIssue({ code: 'custom', message: `must be an address or host name (got ${shown(input)})` });
      return z.NEVER;
    }
    const value = input.trim();
    if (value === '' && allowEmpty) return '';
    if (!isHostName(value)) {
      ctx.addIssue({ code: 'custom', message: `must be an address or host name (got ${shown(input)})` });
      return z.NEVER;
    }
    return value;
  });
}

function parseHttpUrl(input: unknown): URL | undefined {
  try {
    const url = typeof input === 'string' ? new URL(input.includes('://') ? input : `http://${input}`) : undefined;
    return url && /^https?:$/.test(url.protocol) ? url : undefined;
  } catch {
    return undefined;
  }
}

/** An http(s) URL with no path, such as http://127.0.0.1:8500. */
export function httpBaseUrl() {
  return z.unknown().transform((input, ctx): URL => {
    const url = parseHttpUrl(input);
    if (!url || (url.pathname !== '/' && url.pathname !== '')) {
      ctx.addIssue({ code: 'custom', message: `must be an http(s) address such as http://127.0.0.1:8500 (got ${shown(input)})` });
      return z.NEVER;
    }
    return url;
  });
}

/** A full http(s) URL (a path allowed), or empty for "none". */
export function optionalHttpUrl() {
  return z.unknown().transform((input, ctx): URL | null => {
    if (input === '' || input === undefined) return null;
    const url = typeof input === 'string' && input.includes('://') ? parseHttpUrl(input) : undefined;
    if (!url) {
      ctx.addIssue({ code: 'custom', message: `must be an http(s) URL such as https://hooks.slack.com/services/… (got ${shown(input)})` });
      return z.NEVER;
    }
    return url;
  });
}

/** A path to a file this process can read, or empty for "none". */
export function readableFile() {
  return z.unknown().transform((input, ctx): string => {
    if (input === '' || input === undefined) return '';
    if (typeof input !== 'string') {
      ctx.addIssue({ code: 'custom', message: `must be a file path (got ${shown(input)})` });
      return z.NEVER;
    }
    try {
      accessSync(input, constants.R_OK);
      if (!statSync(input).isFile()) throw new Error('not a file');
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be a readable file (got ${shown(input)})` });
      return z.NEVER;
    }
    return input;
  });
}

export function urlPath() {
  return z.unknown().transform((input, ctx): string => {
    if (typeof input !== 'string' || !/^\/[\x21-\x7e]*$/.test(input)) {
      ctx.addIssue({ code: 'custom', message: `must be a path starting with / (got ${shown(input)})` });
      return z.NEVER;
    }
    return input;
  });
}

export function text(maxLength = 512) {
  return z.unknown().transform((input, ctx): string => {
    if (typeof input !== 'string' || input.length > maxLength) {
      ctx.addIssue({ code: 'custom', message: `must be text of at most ${maxLength} characters (got ${shown(input)})` });
      return z.NEVER;
    }
    return input;
  });
}

/** "a,b,c" or ["a","b","c"]; empty items are dropped. */
export function list(itemPattern: RegExp, what: string) {
  return z.unknown().transform((input, ctx): string[] => {
    const items = typeof input === 'string' ? input.split(',').map((s) => s.trim()).filter(Boolean)
      : Array.isArray(input) && input.every((s) => typeof s === 'string') ? input : undefined;
    const bad = items?.find((item) => !itemPattern.test(item));
    if (!items || bad !== undefined) {
      ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of ${what} (got ${shown(bad ?? input)})` });
      return z.NEVER;
    }
    return items;
  });
}

/** "version=1.2,zone=a" or {"version":"1.2"}; keys as Consul meta allows. */
export function keyValues() {
  const KEY = /^[A-Za-z0-9_-]{1,128}$/;
  return z.unknown().transform((input, ctx): Record<string, string> => {
    const result: Record<string, string> = {};
    const pairs: Array<[string, unknown]> = typeof input === 'string'
      ? input.split(',').map((s) => s.trim()).filter(Boolean).map((pair) => {
        const at = pair.indexOf('=');
        return at < 0 ? [pair, undefined] : [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
      })
      : input && typeof input === 'object' && !Array.isArray(input) ? Object.entries(input) : [['', undefined]];
    for (const [key, value] of pairs) {
      if (!KEY.test(key) || typeof value !== 'string' || value.length > 512) {
        ctx.addIssue({ code: 'custom', message: `must be key=value pairs separated by commas, keys of letters, digits, '_' or '-' (got ${shown(typeof input === 'string' ? key : input)})` });
        return z.NEVER;
      }
      result[key] = value;
    }
    return result;
  });
}

/** A cookie name: an RFC 6265 token (letters, digits and !#$%&'*+-.^_`|~). */
export function cookieName() {
  return z.unknown().transform((input, ctx): string => {
    if (typeof input !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/.test(input)) {
      ctx.addIssue({ code: 'custom', message: `must be a cookie name of letters, digits and !#$%&'*+-.^_\`|~ (got ${shown(input)})` });
      return z.NEVER;
    }
    return input;
  });
}

/** Routes, "shop.example.com/,/api;strip" or a JSON array of them (see shared/routes.ts). */
export function routeList() {
  return z.unknown().transform((input, ctx): Route[] => {
    const items = typeof input === 'string' ? input.split(',').map((s) => s.trim()).filter(Boolean)
      : Array.isArray(input) && input.every((s) => typeof s === 'string') ? input : undefined;
    if (!items) {
      ctx.addIssue({ code: 'custom', message: `must be routes like shop.example.com/ or /api (got ${shown(input)})` });
      return z.NEVER;
    }
    const routes: Route[] = [];
    for (const item of items) {
      const parsed = parseRoute(item);
      if ('error' in parsed) {
        ctx.addIssue({ code: 'custom', message: parsed.error });
        return z.NEVER;
      }
      routes.push(parsed);
    }
    return routes;
  });
}
