// Sticky sessions: a cookie that names the instance a client was served by,
// so an app that keeps sessions in memory sees the same client again. The
// cookie holds a keyed hash (HMAC) of the instance ID, never an address:
// every balancer and worker that shares the secret can read it without
// shared state, and a client learns nothing about the servers from it.
// When the named instance cannot serve, the request goes elsewhere and the
// response carries a new cookie (as HAProxy, nginx and Traefik do).
import { createHmac } from 'node:crypto';
import { STICKY_META } from '../../shared/instance.ts';
import type { RoutingTable } from '../discovery/routing-table.ts';

export type StickyMode = 'auto' | 'on' | 'off';

export interface StickySettings {
  sticky: StickyMode;
  stickyCookie: string;
  stickySecret: string;
  /** The balancer serves TLS: the cookie is marked Secure. */
  secure: boolean;
}

export interface Sticky {
  /** Whether requests to this table are sticky (auto: an instance asked for it). */
  enabled(table: RoutingTable): boolean;
  /** The instance ID the request's cookie names, if it names one in this table. */
  boundInstance(table: RoutingTable, cookieHeader: string | string[] | undefined): string | undefined;
  /** The Set-Cookie value that binds a client to this instance. */
  setCookie(instanceId: string): string;
}

/** Cookie value for an instance: 16 bytes of HMAC-SHA256, base64url (22 characters). */
export function stickyToken(secret: string, instanceId: string): string {
  return createHmac('sha256', secret).update(instanceId).digest().subarray(0, 16).toString('base64url');
}

/** The value of one cookie in a Cookie header (or several, as HTTP/2 sends them). */
export function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join('; ') : header;
  const prefix = `${name}=`;
  let at = text.indexOf(prefix);
  while (at >= 0) {
    if (at === 0 || text[at - 1] === ' ' || text[at - 1] === ';') {
      const end = text.indexOf(';', at);
      return text.slice(at + prefix.length, end < 0 ? undefined : end).trim();
    }
    at = text.indexOf(prefix, at + 1);
  }
  return undefined;
}

export function createSticky(settings: StickySettings): Sticky {
  // Per routing-table snapshot (immutable, swapped on change): whether it is
  // sticky and which token names which instance. Computed once per table.
  const perTable = new WeakMap<RoutingTable, { enabled: boolean; byToken: Map<string, string> }>();
  const tokens = new Map<string, string>();
  const tokenOf = (id: string) => {
    let token = tokens.get(id);
    if (token === undefined) {
      if (tokens.size > 10_000) tokens.clear(); // instance IDs come and go; keep the cache bounded
      tokens.set(id, (token = stickyToken(settings.stickySecret, id)));
    }
    return token;
  };
  const view = (table: RoutingTable) => {
    let entry = perTable.get(table);
    if (!entry) {
      const enabled = settings.sticky === 'on' || (settings.sticky === 'auto' && table.instances.some((i) => i.meta[STICKY_META] === 'true'));
      entry = { enabled, byToken: new Map(enabled ? table.instances.map((i) => [tokenOf(i.id), i.id]) : []) };
      perTable.set(table, entry);
    }
    return entry;
  };
  const attributes = `; Path=/; HttpOnly; SameSite=Lax${settings.secure ? '; Secure' : ''}`;
  return {
    enabled: (table) => view(table).enabled,
    boundInstance(table, cookieHeader) {
      const entry = view(table);
      if (!entry.enabled) return undefined;
      const token = cookieValue(cookieHeader, settings.stickyCookie);
      return token === undefined ? undefined : entry.byToken.get(token);
    },
    setCookie: (instanceId) => `${settings.stickyCookie}=${tokenOf(instanceId)}${attributes}`,
  };
}
