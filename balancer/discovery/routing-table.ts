// The routing table: an immutable snapshot of the instances Consul lists as
// passing, swapped whole when Consul reports a change (Fabio's model).
// Request handling reads the current snapshot and never waits on Consul.
import { isHostName } from '../../shared/config/values.ts';
import { z } from 'zod';
import type { Instance } from '../../shared/instance.ts';
import { ROUTES_META } from '../../shared/routes.ts';

export interface RoutingTable {
  readonly version: number;
  readonly instances: readonly Instance[];
  readonly byId: ReadonlyMap<string, Instance>;
  /** Instances kept although Consul stopped listing them (Consul just came back). */
  readonly held: ReadonlySet<string>;
  /** Instances served although Consul does not list them as passing: only their health signal failed (fail-open.ts). */
  readonly failOpen: ReadonlySet<string>;
}

export const EMPTY_TABLE: RoutingTable = Object.freeze({ version: 0, instances: Object.freeze([]), byId: new Map<string, Instance>(), held: new Set<string>(), failOpen: new Set<string>() });

export function buildTable(previous: RoutingTable, instances: readonly Instance[], held: ReadonlySet<string> = new Set(), failOpen: ReadonlySet<string> = new Set()): RoutingTable {
  const sorted = [...instances].sort((a, b) => a.id.localeCompare(b.id));
  return Object.freeze({
    version: previous.version + 1,
    instances: Object.freeze(sorted.map((instance) => Object.freeze(instance))),
    byId: new Map(sorted.map((instance) => [instance.id, instance])),
    held,
    failOpen,
  });
}

export interface TableDiff {
  added: Instance[];
  removed: Instance[];
  changed: Instance[];
}

export function diffTables(previous: RoutingTable, next: RoutingTable): TableDiff {
  const added = next.instances.filter((i) => !previous.byId.has(i.id));
  const removed = previous.instances.filter((i) => !next.byId.has(i.id));
  const changed = next.instances.filter((i) => {
    const before = previous.byId.get(i.id);
    // The routes an instance declares are part of how it is routed (a re-registration may change them).
    return before !== undefined && (before.address !== i.address || before.port !== i.port || before.node !== i.node || before.meta[ROUTES_META] !== i.meta[ROUTES_META]);
  });
  return { added, removed, changed };
}

export function sameInstances(a: RoutingTable, b: RoutingTable): boolean {
  const diff = diffTables(a, b);
  return diff.added.length === 0 && diff.removed.length === 0 && diff.changed.length === 0
    && a.held.size === b.held.size && [...a.held].every((id) => b.held.has(id))
    && a.failOpen.size === b.failOpen.size && [...a.failOpen].every((id) => b.failOpen.has(id));
}

// What we read from Consul's /v1/health/service/<name> entries. Anything
// else in the entry is ignored; an entry without these is skipped, not fatal.
const healthEntry = z.object({
  Node: z.object({ Node: z.string(), Address: z.string() }),
  Service: z.object({
    ID: z.string().min(1),
    Service: z.string(),
    Address: z.string().optional().default(''),
    Port: z.number().int().min(1).max(65535),
    Tags: z.array(z.string()).nullish(),
    Meta: z.record(z.string(), z.string()).nullish(),
  }),
});

export interface ParsedHealth {
  instances: Instance[];
  /** One line per entry that was skipped, for the log. */
  problems: string[];
}

/** Turns a Consul health response into instances; never throws. */
export function parseHealthEntries(data: unknown): ParsedHealth | { error: string } {
  if (!Array.isArray(data)) return { error: `expected a JSON array of health entries, got ${data === null ? 'null' : typeof data}` };
  const instances: Instance[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  data.forEach((entry, index) => {
    const parsed = healthEntry.safeParse(entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      problems.push(`entry ${index}: ${issue?.path.join('.') || '(root)'} ${issue?.message ?? 'invalid'}`);
      return;
    }
    const { Node: node, Service: service } = parsed.data;
    const address = service.Address || node.Address;
    if (!address) {
      problems.push(`entry ${index}: instance ${service.ID} has no address`);
      return;
    }
    // The address becomes part of an upstream URL: only a plain host or IP may.
    if (!isHostName(address)) {
      problems.push(`entry ${index}: instance ${service.ID} has an address that is not a host or IP (${JSON.stringify(address.slice(0, 80))})`);
      return;
    }
    if (seen.has(service.ID)) {
      problems.push(`entry ${index}: duplicate instance ID ${service.ID}`);
      return;
    }
    seen.add(service.ID);
    instances.push({ id: service.ID, service: service.Service, node: node.Node, address, port: service.Port, tags: service.Tags ?? [], meta: service.Meta ?? {} });
  });
  return { instances, problems };
}
