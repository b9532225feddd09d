// What the admin listener shows of the whole balancer: GET /_sempre/status
// and the dashboard's snapshot, assembled from each service's own, with the
// route table (--routing routes) and every worker's log output.
import type { LogOutputStats } from '../../shared/log-output.ts';
import { describeRoutes, type RouteTable } from '../discovery/route-table.ts';
import type { DashboardModel } from './dashboard-model.ts';
import { logOutputStatus, type balancerStatus } from './status.ts';

/** One service's own status and snapshot (a service runtime). */
export interface ServiceView {
  readonly service: string;
  status(): ReturnType<typeof balancerStatus>;
  snapshot(): ReturnType<DashboardModel['snapshot']>;
}

export interface BalancerView {
  /** --routing routes. */
  readonly routed: boolean;
  /** --service: the one service without routes. */
  readonly service: string;
  readonly consulAddress: string;
  readonly startedAt: number;
  now(): number;
  readonly runtimes: ReadonlyMap<string, ServiceView>;
  routes(): RouteTable;
  noRoute(): number;
  /** Every worker's log output together. */
  logOutput(): LogOutputStats;
  /** With routes: whether Consul answered the last read of the service list. */
  serviceListReachable(): boolean;
}

/** GET /_sempre/status: the one service's status, or every routed service's with the route table. */
export function balancerStatusView(view: BalancerView) {
  if (!view.routed) return { ...view.runtimes.get(view.service)!.status(), logOutput: logOutputStatus(view.logOutput(), view.now()) };
  const routes = view.routes();
  const runtimes = [...view.runtimes.values()];
  return {
    routing: 'routes',
    startedAt: new Date(view.startedAt).toISOString(),
    uptimeSeconds: Math.round((view.now() - view.startedAt) / 1000),
    routeTable: { version: routes.version, routes: describeRoutes(routes), conflicts: routes.conflicts, problems: routes.problems },
    noRoute: view.noRoute(),
    services: runtimes.map((r) => r.status()),
    // Every service's instances in one list, each naming its service (scripts and the local stack read it).
    instances: runtimes.flatMap((r) => r.status().instances.map((i) => ({ service: r.service, ...i }))),
    logOutput: logOutputStatus(view.logOutput(), view.now()),
  };
}

/** The dashboard's view of one service (the first one when not named), with the list of services to choose from. */
export function dashboardSnapshot(view: BalancerView, service: string | undefined) {
  const runtime = view.runtimes.get(service ?? '') ?? (view.routed ? [...view.runtimes.values()][0] : view.runtimes.get(view.service)!);
  const snapshot = runtime?.snapshot();
  const none = { now: view.now(), service: service ?? '', serving: 0, consul: { reachable: view.serviceListReachable(), since: null, lastError: null, address: view.consulAddress }, instances: [], events: [], series: [] };
  return { ...(snapshot ?? none), services: [...view.runtimes.keys()], ...(view.routed ? { conflicts: view.routes().conflicts } : {}), logOutput: view.logOutput() };
}
