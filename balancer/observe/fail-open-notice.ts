// Tells people when fail-open (discovery/fail-open.ts) starts, changes or
// ends: a log line each time, and while it serves against Consul's list the
// dashboard's banner and event (the alerts follow the dashboard model).
import type { Logger } from '../../shared/logger.ts';
import { describeFailOpen, type FailOpen } from '../discovery/fail-open.ts';
import type { RoutingTable } from '../discovery/routing-table.ts';
import type { DashboardModel } from './dashboard-model.ts';

export interface FailOpenNoticeParts {
  service: string;
  failOpen: FailOpen;
  /** The health watch's table (none before the watch exists). */
  table: () => RoutingTable | undefined;
  logger: Logger;
  model: DashboardModel;
  now: () => number;
}

/** Returns what to call whenever the rule may have changed: it speaks once per change of its state. */
export function failOpenNotifier({ service, failOpen, table, logger, model, now }: FailOpenNoticeParts): () => void {
  let failOpenSaid = '';
  // The banner, the alerts and the metric are about serving against Consul's
  // list: a rule that is on but may serve nobody (every app really down) is
  // only logged, the ordinary 503 and incidents say the rest.
  let servingSaid = false;
  return () => {
    const state = failOpen.state();
    const serving = state.active && state.served.length > 0;
    const key = serving ? `on:${state.served.map((s) => s.id).join(',')}:${state.unhealthy}` : state.active ? 'none' : 'off';
    if (key === failOpenSaid || (key === 'off' && failOpenSaid === '')) {
      failOpenSaid = key;
      return;
    }
    failOpenSaid = key;
    const passing = (table()?.instances.length ?? 0) - (table()?.failOpen.size ?? 0);
    const text = state.active ? describeFailOpen(service, passing, state) : `back to Consul's list: ${passing} passing instance(s) of ${service}`;
    if (state.active) logger.warn({ failOpen: true, served: state.served, refused: state.refused }, text);
    else logger.info({ failOpen: false }, text);
    if (!serving && !servingSaid) return;
    servingSaid = serving;
    model.failOpenChanged(serving ? state : { ...state, active: false }, serving || !state.active ? text : `no instance may be served against Consul's list any more: ${text}`, now());
  };
}
