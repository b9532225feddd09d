// Consul stopped listing an instance. In maintenance (a deploy, the agent
// draining on SIGTERM) its tunnels may finish until the drain deadline;
// otherwise it failed and they are closed now so clients reconnect to a
// live one. The catalog watch may hear of the maintenance a moment after
// the health watch dropped the instance, hence the short second look.
import type { ProxyHandler } from './http-path.ts';
import type { Tunnels } from './tunnels.ts';

export interface DepartureParts {
  proxy: Pick<ProxyHandler, 'abandon' | 'forget'>;
  tunnels: Pick<Tunnels, 'openOn' | 'drainInstance' | 'closeInstance' | 'cancelDrain'>;
  /** Consul lists it passing (again). */
  listed: (id: string) => boolean;
  /** Its catalog entry says maintenance. */
  inMaintenance: (id: string) => boolean;
}

/** What to do when Consul's passing list loses or gains an instance. */
export interface Departures {
  removed(id: string): void;
  added(id: string): void;
}

export function instanceDepartures({ proxy, tunnels, listed, inMaintenance }: DepartureParts): Departures {
  return {
    removed: (id) => {
      proxy.abandon(id, 'Consul no longer lists it as passing');
      proxy.forget(id);
      if (tunnels.openOn(id) === 0) return;
      if (inMaintenance(id)) {
        tunnels.drainInstance(id);
        return;
      }
      setTimeout(() => {
        if (listed(id)) return; // back already
        if (inMaintenance(id)) tunnels.drainInstance(id);
        else tunnels.closeInstance(id, 'closed-removed');
      }, 300).unref();
    },
    added: (id) => tunnels.cancelDrain(id),
  };
}
