// The history document the balancers keep in Consul's KV, one key per
// service (sempre/history/<service>): the dashboard's events, each
// instance's incidents with their causes, and which open incidents each
// balancer announced (its alert state). Both balancers of a pair write it,
// merging entries by id (history-store.ts); this file only parses, bounds
// and serialises it, the same way on every balancer so that two of them
// holding the same entries write the same bytes.
//
// Bounds: the newest 200 events; the newest 50 incidents of each of at most
// 100 instances (the most recently out); 5 causes per incident; details cut
// at 300 characters; and the whole value at most 256 KiB (Consul refuses
// values over 512 KB), older entries dropped first until it fits.
import { z } from 'zod';
import { newestFirst, type DashboardEvent, type EventKind } from './events.ts';
import type { IncidentRecord } from './incidents.ts';

export const HISTORY_PREFIX = 'sempre/history';

export function historyKey(service: string): string {
  return `${HISTORY_PREFIX}/${service}`;
}

export const HISTORY_LIMITS = { events: 200, incidentsPerInstance: 50, instances: 100, causes: 5, detailChars: 300, maxBytes: 256 * 1024 } as const;

const EVENT_KINDS = ['joined', 'left', 'ejected', 'readmitted', 'check-critical', 'check-passing', 'maintenance-on', 'maintenance-off', 'registered', 'deregistered',
  'consul-unreachable', 'consul-reachable', 'fail-open-on', 'fail-open-off', 'heal'] as const satisfies readonly EventKind[];

const text = z.string().max(10_000);
const storedEvent = z.object({
  id: text, at: z.number(), kind: z.enum(EVENT_KINDS), instance: text.optional(), cause: text.optional(), detail: text.optional(), by: text,
});
const cause = z.object({ at: z.number(), cause: text, detail: text });
const storedIncident = z.object({
  id: text, since: z.number(), until: z.number().nullable(), cause: text, detail: text, causes: z.array(cause).max(50), by: text,
});

export type StoredEvent = z.infer<typeof storedEvent>;
export type StoredIncident = z.infer<typeof storedIncident>;

export interface HistoryDoc {
  version: 1;
  /** Newest first. */
  events: StoredEvent[];
  /** Per instance, newest first. */
  incidents: Record<string, StoredIncident[]>;
  /** Per balancer: the ids of the open incidents it announced ('left' sent). */
  alerts: Record<string, { open: string[] }>;
}

export const EMPTY_HISTORY: HistoryDoc = { version: 1, events: [], incidents: {}, alerts: {} };

/** Each entry is checked on its own: one bad entry (another version's, a hand edit) is dropped, not the document. */
const loose = z.object({
  version: z.literal(1),
  events: z.array(z.unknown()).default([]),
  incidents: z.record(z.string(), z.array(z.unknown())).default({}),
  alerts: z.record(z.string(), z.object({ open: z.array(z.string()) })).default({}),
});

/**
 * The document in a KV value, or why not. `newer`: written by a later
 * schema, which this balancer must not overwrite.
 */
export function parseHistory(value: string): { doc: HistoryDoc } | { error: string; newer?: boolean } {
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    return { error: `not JSON: ${JSON.stringify(value.slice(0, 40))}` };
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version > 1) return { error: `schema version ${version} (this balancer writes 1)`, newer: true };
  const parsed = loose.safeParse(raw);
  if (!parsed.success) return { error: `not a version 1 history: ${parsed.error.issues[0]?.path.join('.') || '(top)'}: ${parsed.error.issues[0]?.message}` };
  const events = parsed.data.events.flatMap((e) => {
    const one = storedEvent.safeParse(e);
    return one.success ? [one.data] : [];
  });
  const incidents = Object.fromEntries(Object.entries(parsed.data.incidents).map(([id, list]) => [id, list.flatMap((r) => {
    const one = storedIncident.safeParse(r);
    return one.success ? [one.data] : [];
  })]));
  return { doc: { version: 1, events, incidents, alerts: parsed.data.alerts } };
}

const cut = (s: string) => (s.length > HISTORY_LIMITS.detailChars ? `${s.slice(0, HISTORY_LIMITS.detailChars - 1)}…` : s);

/** An event as stored: its balancer named, the local marks left out. */
export function storedEventOf(event: DashboardEvent, self: string): StoredEvent {
  return {
    id: event.id, at: event.at, kind: event.kind,
    ...(event.instance !== undefined ? { instance: event.instance } : {}),
    ...(event.cause !== undefined ? { cause: cut(event.cause) } : {}),
    ...(event.detail !== undefined ? { detail: cut(event.detail) } : {}),
    by: event.by ?? self,
  };
}

export function storedIncidentOf(record: IncidentRecord, self: string): StoredIncident {
  return {
    id: record.id, since: record.since, until: record.until, cause: cut(record.cause), detail: cut(record.detail),
    causes: record.causes.slice(-HISTORY_LIMITS.causes).map((c) => ({ at: c.at, cause: cut(c.cause), detail: cut(c.detail) })),
    by: record.by ?? self,
  };
}

/**
 * The value to write: entries ordered (newest first, keys sorted), within
 * the bounds above, and under the byte cap, older entries dropped first.
 */
export function serializeHistory(doc: HistoryDoc): string {
  let events = [...doc.events].sort(newestFirst).slice(0, HISTORY_LIMITS.events)
    .map((e) => ({ ...e, ...(e.cause !== undefined ? { cause: cut(e.cause) } : {}), ...(e.detail !== undefined ? { detail: cut(e.detail) } : {}) }));
  const latest = (list: StoredIncident[]) => list.reduce((max, r) => Math.max(max, r.until ?? Number.POSITIVE_INFINITY, r.since), Number.NEGATIVE_INFINITY);
  let instances = Object.entries(doc.incidents)
    .map(([id, list]) => [id, [...list].sort((a, b) => b.since - a.since || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)).slice(0, HISTORY_LIMITS.incidentsPerInstance).map((r) => storedIncidentOf(r, r.by))] as const)
    .filter(([, list]) => list.length > 0)
    .sort(([a, x], [b, y]) => latest(y) - latest(x) || (a < b ? -1 : 1))
    .slice(0, HISTORY_LIMITS.instances);
  let perInstance: number = HISTORY_LIMITS.incidentsPerInstance;
  const alerts = Object.fromEntries(Object.entries(doc.alerts).filter(([, a]) => a.open.length > 0).sort(([a], [b]) => (a < b ? -1 : 1)).map(([by, a]) => [by, { open: [...a.open].sort() }]));
  for (;;) {
    const incidents = Object.fromEntries([...instances].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, list]) => [id, list.slice(0, perInstance)]));
    const value = JSON.stringify({ version: 1, events, incidents, alerts });
    if (Buffer.byteLength(value) <= HISTORY_LIMITS.maxBytes || (events.length === 0 && instances.length === 0)) return value;
    // Too big: halve the longer of the events and the incidents per instance, then the instances (least recent out first).
    if (events.length > 0 && (events.length >= perInstance * instances.length || perInstance <= 1)) events = events.slice(0, Math.floor(events.length / 2));
    else if (perInstance > 1) perInstance = Math.floor(perInstance / 2);
    else instances = instances.slice(0, Math.floor(instances.length / 2));
  }
}
