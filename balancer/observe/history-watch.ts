// One blocking query on the prefix sempre/history/ for every service whose
// history this process keeps, instead of one per service. The local Consul
// agent takes at most 200 connections from one client address
// (http_max_conns_per_client): with --routing routes and 50 services, the
// health, catalog and heal-report watches already hold 150, and one history
// watch each made Consul close the next connections (routes.test's 50
// services, in a full run). Each service still gets only its own key.
import type { ConsulClient } from '../../shared/consul-client.ts';
import { startBlockingQuery } from '../discovery/blocking-query.ts';

export const HISTORY_PREFIX = 'sempre/history/';

export type KvEntry = { Key?: unknown; Value?: unknown; ModifyIndex?: unknown };

interface Follower {
  key: string;
  onEntry: (entry: KvEntry | undefined) => void;
  onFailure: (message: string) => void;
}

interface SharedWatch {
  followers: Set<Follower>;
  /** The latest answer, for a follower that joins after it. */
  latest: KvEntry[] | undefined;
  stop(): void;
}

const watches = new Map<ConsulClient, SharedWatch>();

/** Follows one history key: `onEntry` with its entry (undefined: no such key) at each answer. */
export function followHistoryKey(consul: ConsulClient, key: string, waitMs: number, onEntry: Follower['onEntry'], onFailure: Follower['onFailure']): { stop(): void } {
  const follower: Follower = { key, onEntry, onFailure };
  let watch = watches.get(consul);
  if (!watch) {
    const created: SharedWatch = { followers: new Set(), latest: undefined, stop: () => undefined };
    const query = startBlockingQuery({
      consul, service: '', endpoint: 'kv-prefix', key: HISTORY_PREFIX, passing: false, waitMs,
      onFailure: (message) => {
        for (const f of created.followers) f.onFailure(message);
      },
      onAnswer: (data) => {
        if (data !== undefined && !Array.isArray(data)) return 'expected a JSON array of KV entries';
        created.latest = (data ?? []) as KvEntry[];
        for (const f of created.followers) f.onEntry(created.latest.find((entry) => entry?.Key === f.key));
        return undefined;
      },
    });
    created.stop = () => query.stop();
    watches.set(consul, created);
    watch = created;
  }
  const shared = watch;
  shared.followers.add(follower);
  if (shared.latest) {
    const latest = shared.latest;
    queueMicrotask(() => {
      if (shared.followers.has(follower)) onEntry(latest.find((entry) => entry?.Key === key));
    });
  }
  return {
    stop: () => {
      shared.followers.delete(follower);
      if (shared.followers.size > 0) return;
      shared.stop();
      if (watches.get(consul) === shared) watches.delete(consul);
    },
  };
}
