// Everything Consul knows about the service — passing or not — for people:
// the dashboard's instance list, check outputs and maintenance. Routing
// never reads this; it follows the passing-only watch.
import { z } from 'zod';
import type { ConsulClient } from '../../shared/consul-client.ts';
import { startBlockingQuery } from './blocking-query.ts';

export type ConsulHealth = 'passing' | 'warning' | 'critical' | 'maintenance';

export interface CatalogInstance {
  id: string;
  node: string;
  address: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
  health: ConsulHealth;
  /** Output of the check that is not passing, else of the agent's check. */
  checkOutput: string;
  /** The agent's own check alone, maintenance aside: is the app itself healthy? */
  checkStatus: string;
  maintenanceReason: string | null;
  /** The instance's checks and its node's (serfHealth, node maintenance), for fail-open's reading of why it is not passing. */
  checks: CatalogCheck[];
}

export interface CatalogCheck {
  id: string;
  status: string;
  output: string;
  /** The check belongs to the service instance (not to its node). */
  ofService: boolean;
}

const MAINTENANCE_CHECK = /^_service_maintenance:/;

const entrySchema = z.object({
  Node: z.object({ Node: z.string(), Address: z.string() }),
  Service: z.object({
    ID: z.string().min(1),
    Address: z.string().optional().default(''),
    Port: z.number().int(),
    Tags: z.array(z.string()).nullish(),
    Meta: z.record(z.string(), z.string()).nullish(),
  }),
  Checks: z.array(z.object({ CheckID: z.string(), Status: z.string(), Output: z.string().nullish(), Notes: z.string().nullish(), ServiceID: z.string().nullish() })).nullish(),
});

/** Never throws; entries that do not fit are left out. */
export function parseCatalogEntries(data: unknown): CatalogInstance[] | { error: string } {
  if (!Array.isArray(data)) return { error: `expected a JSON array, got ${data === null ? 'null' : typeof data}` };
  const instances: CatalogInstance[] = [];
  for (const entry of data) {
    const parsed = entrySchema.safeParse(entry);
    if (!parsed.success) continue;
    const { Node: node, Service: service } = parsed.data;
    const checks = (parsed.data.Checks ?? []).filter((c) => c.ServiceID === service.ID || MAINTENANCE_CHECK.test(c.CheckID) || !c.ServiceID);
    const maintenance = checks.find((c) => MAINTENANCE_CHECK.test(c.CheckID) && c.CheckID.endsWith(`:${service.ID}`));
    const failing = checks.find((c) => c.Status === 'critical') ?? checks.find((c) => c.Status === 'warning');
    const own = checks.find((c) => c.ServiceID === service.ID && !MAINTENANCE_CHECK.test(c.CheckID));
    const health: ConsulHealth = maintenance ? 'maintenance' : failing ? (failing.Status === 'warning' ? 'warning' : 'critical') : 'passing';
    instances.push({
      id: service.ID,
      node: node.Node,
      address: service.Address || node.Address,
      port: service.Port,
      tags: service.Tags ?? [],
      meta: service.Meta ?? {},
      health,
      checkOutput: ((failing && !maintenance ? failing.Output : own?.Output) ?? '').trim().slice(0, 500),
      checkStatus: own?.Status ?? 'unknown',
      maintenanceReason: maintenance ? (maintenance.Notes || maintenance.Output || 'maintenance').trim() : null,
      checks: checks.map((c) => ({ id: c.CheckID, status: c.Status, output: (c.Output ?? '').trim().slice(0, 500), ofService: c.ServiceID === service.ID })),
    });
  }
  return instances.sort((a, b) => a.id.localeCompare(b.id));
}

export interface CatalogWatch {
  instances(): readonly CatalogInstance[];
  stop(): void;
}

export function watchCatalog(options: {
  consul: ConsulClient;
  service: string;
  waitMs: number;
  onChange: (previous: readonly CatalogInstance[], next: readonly CatalogInstance[]) => void;
}): CatalogWatch {
  let current: readonly CatalogInstance[] = [];
  const query = startBlockingQuery({
    consul: options.consul,
    service: options.service,
    passing: false,
    waitMs: options.waitMs,
    onFailure: () => undefined, // the routing watch reports Consul's reachability
    onAnswer: (data) => {
      const parsed = parseCatalogEntries(data);
      if ('error' in parsed) return parsed.error;
      const previous = current;
      current = parsed;
      options.onChange(previous, parsed);
      return undefined;
    },
  });
  return { instances: () => current, stop: () => query.stop() };
}
