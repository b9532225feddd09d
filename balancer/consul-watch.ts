// Follows Consul's list of passing instances with blocking queries and
// publishes a new routing table whenever it changes. While Consul cannot be
// reached (or answers nonsense) the last table stays in force; when Consul
// comes back, instances it has not re-listed yet are held for a grace period,
// because agents need a heartbeat or two to re-register after a restart.
import { EventEmitter } from 'node:events';
import pRetry from 'p-retry';
import type { ConsulClient } from '../shared/consul-client.ts';
import { describeConsulError } from '../shared/consul-client.ts';
import type { Instance } from '../shared/instance.ts';
import type { Logger } from '../shared/logger.ts';
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
  now?: () => number;
  /** How long one blocking query may wait for a change. */
  waitMs?: number;
}

export interface HealthWatch {
  table(): RoutingTable;
  status(): DiscoveryStatus;
  stop(): void;
}

type HealthServiceCall = (opts: Record<string, unknown>) => Promise<[{ headers: Record<string, string | undefined> }, unknown]>;

export function watchHealthyInstances(options: WatchOptions): HealthWatch {
  const { consul, service, logger, graceMs, onTable } = options;
  const now = options.now ?? Date.now;
  const waitSeconds = Math.max(1, Math.round((options.waitMs ?? 30_000) / 1000));
  const log = logger.child({ component: 'consul-watch', service });
  const stopper = new AbortController();
  let current: RoutingTable = EMPTY_TABLE;
  let latest: readonly Instance[] = [];
  let graceUntil = 0;
  let graceTimer: NodeJS.Timeout | undefined;
  let reminder: NodeJS.Timeout | undefined;
  const status: DiscoveryStatus = { reachable: false, everAnswered: false, lastContactAt: undefined, unreachableSince: undefined, lastError: undefined };

  const publish = () => {
    const listed = new Set(latest.map((i) => i.id));
    const holding = now() < graceUntil ? current.instances.filter((i) => !listed.has(i.id)) : [];
    const next = buildTable(current, [...latest, ...holding], new Set(holding.map((i) => i.id)));
    if (sameInstances(current, next)) return;
    const diff = diffTables(current, next);
    current = next;
    log.info({ version: next.version, instances: next.instances.map((i) => i.id), held: [...next.held], added: diff.added.map((i) => i.id), removed: diff.removed.map((i) => i.id) }, 'routing table updated');
    onTable(next, diff);
  };

  const markReachable = () => {
    const t = now();
    if (!status.reachable && status.everAnswered) {
      log.info({ downForMs: status.unreachableSince ? t - status.unreachableSince : undefined }, 'Consul reachable again; resuming watch');
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
    log.warn({ err: message, serving: current.instances.map((i) => i.id) }, status.everAnswered
      ? 'Consul unreachable; serving the last known routing table'
      : 'Consul unreachable at start; answering 503 until it answers');
    clearInterval(reminder);
    reminder = setInterval(() => log.warn({ err: status.lastError, downForMs: now() - (status.unreachableSince ?? now()), serving: current.instances.map((i) => i.id) }, 'Consul still unreachable; still serving the last known routing table'), 10_000);
    reminder.unref();
  };

  const healthService = consul.health.service.bind(consul.health) as unknown as HealthServiceCall;
  // The client returns [response, body] when given an emitter context with
  // includeResponse, and aborts the blocking query when it emits 'cancel'.
  const context = Object.assign(new EventEmitter(), { includeResponse: true });

  const loop = async () => {
    let index = '0';
    while (!stopper.signal.aborted) {
      try {
        const [response, data] = await pRetry(
          () => healthService({ service, passing: true, stale: true, index, wait: `${waitSeconds}s`, timeout: (waitSeconds + 5) * 1000, ctx: context }),
          {
            retries: Number.POSITIVE_INFINITY,
            minTimeout: 200,
            maxTimeout: 2000,
            signal: stopper.signal,
            onFailedAttempt: ({ error }) => {
              markUnreachable(describeConsulError(error).message);
              // A restarted Consul starts its index from scratch: blocking on
              // our old index would hang until its index caught up.
              index = '0';
            },
          },
        );
        const parsed = parseHealthEntries(data);
        const nextIndex = response.headers['x-consul-index'];
        if ('error' in parsed || !nextIndex || !/^\d+$/.test(nextIndex)) {
          // Malformed answer: keep the last table, back off as if unreachable.
          markUnreachable(`malformed answer from Consul: ${'error' in parsed ? parsed.error : 'no X-Consul-Index header'}`);
          index = '0';
          await new Promise((resolve) => setTimeout(resolve, 1000));
          continue;
        }
        markReachable();
        for (const problem of parsed.problems) log.warn({ problem }, 'skipped a malformed health entry from Consul');
        // An index that goes backwards means Consul restarted: start over.
        index = BigInt(nextIndex) < BigInt(index) ? '0' : nextIndex;
        latest = parsed.instances;
        publish();
      } catch (error) {
        if (stopper.signal.aborted) break;
        markUnreachable(describeConsulError(error).message);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  };
  void loop();

  return {
    table: () => current,
    status: () => ({ ...status }),
    stop: () => {
      stopper.abort();
      context.emit('cancel');
      clearTimeout(graceTimer);
      clearInterval(reminder);
    },
  };
}
