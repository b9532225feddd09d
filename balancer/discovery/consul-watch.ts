// Follows Consul's list of passing instances with blocking queries and
// publishes a new routing table whenever it changes. While Consul cannot be
// reached (or answers nonsense) the last table stays in force; when Consul
// comes back, instances it has not re-listed yet are held for a grace period,
// because agents need a heartbeat or two to re-register after a restart.
import type { ConsulClient } from '../../shared/consul-client.ts';
import type { Instance } from '../../shared/instance.ts';
import type { Logger } from '../../shared/logger.ts';
import { startBlockingQuery } from './blocking-query.ts';
import { buildTable, diffTables, EMPTY_TABLE, parseHealthEntries, sameInstances, type RoutingTable, type TableDiff } from './routing-table.ts';

export interface DiscoveryStatus {
  reachable: boolean;
  /** Whether Consul has answered at least once since start. */
  everAnswered: boolean;
  lastContactAt: number | undefined;
  unreachableSince: number | undefined;
  lastError: string | undefined;
}

export interface WatchOptions {
  consul: ConsulClient;
  service: string;
  logger: Logger;
  graceMs: number;
  onTable: (table: RoutingTable, diff: TableDiff) => void;
  /** Consul became unreachable (or malformed), or answers again. */
  onReachability?: (reachable: boolean, detail: string) => void;
  now?: () => number;
  /** How long one blocking query may wait for a change. */
  waitMs?: number;
  /** Instances to serve beside Consul's passing ones (fail-open.ts), decided without waiting. */
  extra?: (passing: readonly Instance[], current: ReadonlySet<string>) => Instance[];
}

export interface HealthWatch {
  table(): RoutingTable;
  /** Rebuild the table now (what `extra` returns changed). */
  republish(): void;
  status(): DiscoveryStatus;
  stop(): void;
}

export function watchHealthyInstances(options: WatchOptions): HealthWatch {
  const { consul, service, logger, graceMs, onTable } = options;
  const now = options.now ?? Date.now;
  const log = logger.child({ component: 'consul-watch' }); // the logger given already names the service
  let current: RoutingTable = EMPTY_TABLE;
  let latest: readonly Instance[] = [];
  let graceUntil = 0;
  let graceTimer: NodeJS.Timeout | undefined;
  let reminder: NodeJS.Timeout | undefined;
  const status: DiscoveryStatus = { reachable: false, everAnswered: false, lastContactAt: undefined, unreachableSince: undefined, lastError: undefined };

  const publish = () => {
    const listed = new Set(latest.map((i) => i.id));
    const holding = now() < graceUntil ? current.instances.filter((i) => !listed.has(i.id)) : [];
    // Fail-open decides only while Consul answers; while it is unreachable the
    // instances it served stay, as the rest of the last table does.
    const extra = status.reachable
      ? (options.extra?.(latest, new Set(current.byId.keys())) ?? []).filter((i) => !listed.has(i.id) && !holding.some((h) => h.id === i.id))
      : current.instances.filter((i) => current.failOpen.has(i.id) && !listed.has(i.id));
    const next = buildTable(current, [...latest, ...holding, ...extra], new Set(holding.map((i) => i.id)), new Set(extra.map((i) => i.id)));
    if (sameInstances(current, next)) return;
    const diff = diffTables(current, next);
    current = next;
    log.info({ version: next.version, instances: next.instances.map((i) => i.id), held: [...next.held], failOpen: [...next.failOpen], added: diff.added.map((i) => i.id), removed: diff.removed.map((i) => i.id) }, 'routing table updated');
    onTable(next, diff);
  };

  const markReachable = () => {
    const t = now();
    if (!status.reachable && status.everAnswered) {
      log.info({ downForMs: status.unreachableSince ? t - status.unreachableSince : undefined }, 'Consul reachable again; resuming watch');
      options.onReachability?.(true, `after ${Math.round((t - (status.unreachableSince ?? t)) / 100) / 10} s`);
      if (current.instances.length > 0 && graceMs > 0) {
        graceUntil = t + graceMs;
        clearTimeout(graceTimer);
        graceTimer = setTimeout(publish, graceMs + 1);
        graceTimer.unref();
      }
    }
    status.reachable = true;
    status.everAnswered = true;
    status.lastContactAt = t;
    status.unreachableSince = undefined;
    status.lastError = undefined;
    clearInterval(reminder);
    reminder = undefined;
  };

  const markUnreachable = (message: string) => {
    status.lastError = message;
    if (!status.reachable && status.unreachableSince !== undefined) return;
    status.reachable = false;
    status.unreachableSince = now();
    options.onReachability?.(false, message);
    log.warn({ err: message, serving: current.instances.map((i) => i.id) }, status.everAnswered
      ? 'Consul unreachable; serving the last known routing table'
      : 'Consul unreachable at start; answering 503 until it answers');
    clearInterval(reminder);
    reminder = setInterval(() => log.warn({ err: status.lastError, downForMs: now() - (status.unreachableSince ?? now()), serving: current.instances.map((i) => i.id) }, 'Consul still unreachable; still serving the last known routing table'), 10_000);
    reminder.unref();
  };

  const query = startBlockingQuery({
    consul,
    service,
    passing: true,
    waitMs: options.waitMs ?? 30_000,
    onFailure: markUnreachable,
    onAnswer: (data) => {
      const parsed = parseHealthEntries(data);
      if ('error' in parsed) return parsed.error;
      markReachable();
      for (const problem of parsed.problems) log.warn({ problem }, 'skipped a malformed health entry from Consul');
      latest = parsed.instances;
      publish();
      return undefined;
    },
  });

  return {
    table: () => current,
    republish: publish,
    status: () => ({ ...status }),
    stop: () => {
      query.stop();
      clearTimeout(graceTimer);
      clearInterval(reminder);
    },
  };
}
