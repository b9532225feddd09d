// Chooses the instance for one attempt. Ejected instances are skipped unless
// every instance is ejected (then all are tried: better a chance than a
// certain error, Envoy's "panic mode"). Instances in slow start are offered
// with a probability equal to their weight.
import type { Instance } from '../../shared/instance.ts';
import type { InstanceStates } from '../health/instance-state.ts';
import type { RoutingTable } from '../discovery/routing-table.ts';

export type Strategy = 'least-outstanding' | 'round-robin';

export interface Picker {
  /**
   * `preferred` is the instance a sticky client is bound to: taken when it is
   * in the table, untried, not ejected and has room; otherwise the usual choice.
   */
  pick(table: RoutingTable, exclude: ReadonlySet<string>, now: number, preferred?: string): Instance | undefined;
  /**
   * Whether an instance outside `exclude` could take another attempt (no side
   * effects). `exclude` may be the one instance tried so far, which spares the
   * request path a set of one.
   */
  hasAlternative(table: RoutingTable, exclude: ReadonlySet<string> | string): boolean;
}

/**
 * `maxPerInstance` (0 = none) caps the requests in flight on one instance, so
 * a slow instance cannot tie up every client connection the balancer has.
 */
export function createPicker(strategy: Strategy, states: InstanceStates, random: () => number = Math.random, maxPerInstance = 0): Picker {
  let cursor = 0;
  const hasRoom = (i: Instance) => maxPerInstance <= 0 || (states.get(i.id)?.outstanding ?? 0) < maxPerInstance;
  return {
    hasAlternative(table, exclude) {
      for (const i of table.instances) {
        const excluded = typeof exclude === 'string' ? i.id === exclude : exclude.has(i.id);
        if (!excluded && hasRoom(i)) return true;
      }
      return false;
    },
    pick(table, exclude, now, preferred) {
      if (preferred !== undefined && !exclude.has(preferred)) {
        const bound = table.byId.get(preferred);
        if (bound && !states.isEjected(preferred) && hasRoom(bound)) return bound;
      }
      // The usual case — nothing tried, ejected, ramping up or full — needs no filtering.
      let everyOneOffered = true;
      for (const i of table.instances) {
        const state = states.get(i.id);
        if (!state || state.ejected || exclude.has(i.id) || !hasRoom(i) || states.weight(i.id, now) < 1) {
          everyOneOffered = false;
          break;
        }
      }
      let candidates = table.instances;
      if (!everyOneOffered) {
        const untried = table.instances.filter((i) => !exclude.has(i.id) && hasRoom(i));
        if (untried.length === 0) return undefined;
        const live = untried.filter((i) => !states.isEjected(i.id));
        const pool = live.length > 0 ? live : untried;
        const offered = pool.filter((i) => random() < states.weight(i.id, now));
        candidates = offered.length > 0 ? offered : pool;
      }
      if (candidates.length === 0) return undefined;
      cursor = (cursor + 1) % 1_000_000_007;
      if (strategy === 'round-robin') return candidates[cursor % candidates.length];
      // Least outstanding; ties are broken by rotating the starting point so
      // equally idle instances share the load evenly.
      let best: Instance | undefined;
      let bestLoad = Number.POSITIVE_INFINITY;
      for (let k = 0; k < candidates.length; k += 1) {
        const instance = candidates[(cursor + k) % candidates.length]!;
        const load = states.get(instance.id)?.outstanding ?? 0;
        if (load < bestLoad) {
          best = instance;
          bestLoad = load;
        }
      }
      return best;
    },
  };
}
