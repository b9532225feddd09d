// The route table for one balancer in front of several services: which
// service, and which of its instances, answer a host and path. Built whole
// from every routed service's routing table whenever one changes, swapped
// atomically, and read by request handling without waiting on anything.
//
// Routes come from each instance (its agent's --route). During a rolling
// deploy old and new instances may disagree: each route is served by the
// instances that declare it, and a route stays as long as any instance
// declares it. Two services declaring the same route: the first by name wins,
// and the conflict is reported.
import type { Instance } from '../../shared/instance.ts';
import { formatRoute, routesFromMeta, underPrefix, type Route } from '../../shared/routes.ts';
import { buildTable, EMPTY_TABLE, type RoutingTable } from './routing-table.ts';

export interface RouteTarget {
  readonly service: string;
  readonly route: Route;
  /** The instances of `service` that declare this route. */
  readonly table: RoutingTable;
  /**
   * Those that declare it with ;strip. Instances may disagree while a deploy
   * adds or drops ;strip: each gets the path it asked for.
   */
  readonly strips: ReadonlySet<string>;
}

export interface RouteConflict {
  route: string;
  winner: string;
  losers: string[];
}

export interface RouteTable {
  readonly version: number;
  readonly exact: ReadonlyMap<string, readonly RouteTarget[]>;
  /** By the domain under the wildcard: "*.example.com" is kept under "example.com". */
  readonly wildcard: ReadonlyMap<string, readonly RouteTarget[]>;
  readonly anyHost: readonly RouteTarget[];
  readonly targets: readonly RouteTarget[];
  readonly conflicts: readonly RouteConflict[];
  /** Routes some instance declares but that do not parse: for the log and status. */
  readonly problems: readonly string[];
}

export const EMPTY_ROUTES: RouteTable = { version: 0, exact: new Map(), wildcard: new Map(), anyHost: [], targets: [], conflicts: [], problems: [] };

/** An instance Consul knows but does not list as passing (critical, in maintenance). */
export interface DeclaringInstance {
  readonly id: string;
  readonly meta: Readonly<Record<string, string>>;
}

/**
 * `services`: each routed service's passing instances. `notPassing`: the
 * others Consul still knows, per service — their routes stay in the table
 * with no instance behind them, so a service that is down answers 503 (as
 * with --routing service) instead of its requests falling through to
 * another route or a 404.
 */
export function buildRouteTable(previous: RouteTable, services: ReadonlyMap<string, RoutingTable>, notPassing: ReadonlyMap<string, readonly DeclaringInstance[]> = new Map()): RouteTable {
  // route key → service → { route, instances declaring it }
  const declared = new Map<string, Map<string, { route: Route; instances: Instance[]; strips: Set<string> }>>();
  const problems: string[] = [];
  for (const [service, table] of services) {
    for (const instance of table.instances) {
      const { routes, problems: bad } = routesFromMeta(instance.meta);
      for (const problem of bad) problems.push(`${service}/${instance.id}: ${problem}`);
      for (const route of routes) {
        const key = `${route.host}${route.path}`;
        let byService = declared.get(key);
        if (!byService) declared.set(key, (byService = new Map()));
        let entry = byService.get(service);
        if (!entry) byService.set(service, (entry = { route, instances: [], strips: new Set() }));
        entry.instances.push(instance);
        if (route.strip) entry.strips.add(instance.id);
      }
    }
  }
  for (const [service, instances] of notPassing) {
    const passing = services.get(service);
    for (const instance of instances) {
      if (passing?.byId.has(instance.id)) continue;
      for (const route of routesFromMeta(instance.meta).routes) {
        const key = `${route.host}${route.path}`;
        let byService = declared.get(key);
        if (!byService) declared.set(key, (byService = new Map()));
        if (!byService.has(service)) byService.set(service, { route, instances: [], strips: new Set() });
      }
    }
  }
  const targets: RouteTarget[] = [];
  const conflicts: RouteConflict[] = [];
  for (const [key, byService] of [...declared].sort(([a], [b]) => a.localeCompare(b))) {
    const names = [...byService.keys()].sort();
    const winner = names[0]!;
    if (names.length > 1) conflicts.push({ route: key, winner, losers: names.slice(1) });
    const { route, instances, strips } = byService.get(winner)!;
    // A held instance (Consul just came back) stays held in the route's table too.
    const held = services.get(winner)?.held ?? new Set<string>();
    targets.push({ service: winner, route: { ...route, strip: strips.size > 0 }, strips, table: buildTable(EMPTY_TABLE, instances, new Set(instances.filter((i) => held.has(i.id)).map((i) => i.id))) });
  }
  // Longest path first within each host group.
  const byLength = (a: RouteTarget, b: RouteTarget) => b.route.path.length - a.route.path.length;
  const exact = new Map<string, RouteTarget[]>();
  const wildcard = new Map<string, RouteTarget[]>();
  const anyHost: RouteTarget[] = [];
  for (const target of targets) {
    const { host } = target.route;
    if (!host) anyHost.push(target);
    else if (host.startsWith('*.')) pushTo(wildcard, host.slice(2), target);
    else pushTo(exact, host, target);
  }
  for (const list of [...exact.values(), ...wildcard.values(), anyHost]) list.sort(byLength);
  return { version: previous.version + 1, exact, wildcard, anyHost, targets, conflicts, problems };
}

function pushTo(map: Map<string, RouteTarget[]>, key: string, target: RouteTarget): void {
  const list = map.get(key);
  if (list) list.push(target);
  else map.set(key, [target]);
}

/** "Shop.Example.com:8080" → "shop.example.com"; IPv6 literals keep their brackets. */
export function requestHost(hostHeader: string | undefined): string {
  if (!hostHeader) return '';
  let host = hostHeader.trim().toLowerCase();
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/**
 * Exact host before wildcard host before no host; within each, the longest
 * path prefix, on segment boundaries (/api matches /api and /api/x, never /apix).
 */
export function matchRoute(table: RouteTable, host: string, path: string): RouteTarget | undefined {
  const first = (list: readonly RouteTarget[] | undefined) => list?.find((t) => underPrefix(path, t.route.path));
  const dot = host.indexOf('.');
  return first(table.exact.get(host)) ?? (dot > 0 ? first(table.wildcard.get(host.slice(dot + 1))) : undefined) ?? first(table.anyHost);
}

/** For status and logs: every route, its service and the instances serving it. */
export function describeRoutes(table: RouteTable): Array<{ route: string; service: string; strip: boolean; instances: string[] }> {
  return table.targets.map((t) => ({ route: formatRoute({ ...t.route, strip: false }), service: t.service, strip: t.route.strip, instances: t.table.instances.map((i) => i.id) }));
}
