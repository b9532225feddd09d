// "At most N instances of a service healing at once", across hosts, through
// Consul (HashiCorp's semaphore pattern, simplified): the agent makes a
// session (TTL, behavior release), acquires its own key under the service's
// prefix with it, then counts the keys held. Over the limit, it lets go and
// tries later. The session is renewed while the heal runs; when the agent
// dies, Consul lets the session expire and the key is released by itself.
import type { ConsulClient } from '../../shared/consul-client.ts';

export const HEAL_LOCK_PREFIX = 'sempre/heal-lock';
const CALL_TIMEOUT_MS = 2000;

export function healLockKey(service: string, instance: string): string {
  return `${HEAL_LOCK_PREFIX}/${service}/${instance}`;
}

export interface HealLock {
  /** The keys held when it was taken (this one included), for the record. */
  holders: string[];
  release(): Promise<void>;
}

export type LockAttempt = { held: HealLock } | { held: undefined; why: string };

export interface HealLockOptions {
  consul: ConsulClient;
  service: string;
  instance: string;
  limit: number;
  /** Session TTL: how long after the agent dies its heal slot frees itself (Consul: 10 s to 24 h). */
  sessionTtlSeconds: number;
  /** Consul no longer knows the session (it expired): the slot may be taken by another instance now. */
  onLost?: (message: string) => void;
}

interface KvEntry { Key: string; Session?: string; Value?: string | null }

export async function tryHealLock(options: HealLockOptions): Promise<LockAttempt> {
  const { consul, service, instance } = options;
  const key = healLockKey(service, instance);
  // No node checks (checks: []): a short gossip blip on this host must not free the slot while
  // the app restarts; the TTL alone frees it when the agent dies.
  const session = (await consul.session.create({ name: `sempre-agent heal of ${service}/${instance}`, ttl: `${options.sessionTtlSeconds}s`, behavior: 'release', lockdelay: '0s', checks: [], timeout: CALL_TIMEOUT_MS } as never)) as { ID: string };
  const destroy = () => consul.session.destroy({ id: session.ID, timeout: CALL_TIMEOUT_MS } as never).then(() => undefined, () => undefined);
  try {
    const value = JSON.stringify({ instance, since: new Date().toISOString() });
    const acquired = (await consul.kv.set({ key, value, acquire: session.ID, timeout: CALL_TIMEOUT_MS } as never)) as boolean;
    if (!acquired) {
      await destroy();
      return { held: undefined, why: `${key} is held by another session` };
    }
    // Counted after taking our own: of two that take theirs at once, at least one sees both.
    const entries = ((await consul.kv.get({ key: `${HEAL_LOCK_PREFIX}/${service}/`, recurse: true, consistent: true, timeout: CALL_TIMEOUT_MS } as never)) ?? []) as KvEntry[];
    const holders = entries.filter((e) => e.Session).map((e) => e.Key.slice(e.Key.lastIndexOf('/') + 1));
    if (holders.length > options.limit) {
      await destroy(); // releases the key (behavior release)
      return { held: undefined, why: `${holders.length - 1} other instance(s) of ${service} already healing (${holders.filter((h) => h !== instance).join(', ')}; limit ${options.limit})` };
    }
    const renew = setInterval(() => {
      consul.session.renew({ id: session.ID, timeout: CALL_TIMEOUT_MS } as never).then(
        (renewed: unknown) => { if (Array.isArray(renewed) && renewed.length === 0) options.onLost?.('Consul no longer knows the heal session'); },
        (error: { response?: { statusCode?: number }; message?: string }) => {
          // 404: the session expired (this host was cut off longer than its TTL); anything else: a passing outage.
          if (error.response?.statusCode === 404) options.onLost?.('Consul no longer knows the heal session (404)');
        },
      );
    }, Math.max(1000, (options.sessionTtlSeconds * 1000) / 3));
    renew.unref();
    return {
      held: {
        holders,
        release: async () => {
          clearInterval(renew);
          await consul.kv.del({ key, timeout: CALL_TIMEOUT_MS } as never).catch(() => undefined);
          await destroy();
        },
      },
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}
