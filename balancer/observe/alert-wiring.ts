// Connects one service's dashboard model to the alert webhook (alerts.ts):
// incidents, the agents' heals and fail-open. Only worker 0 (or the only
// process) does this, like the dashboard: one alert per incident.
import type { HealReport } from '../../shared/heal-report.ts';
import type { Logger } from '../../shared/logger.ts';
import type { CatalogInstance } from '../discovery/catalog-watch.ts';
import { describeFailOpen, type FailOpen } from '../discovery/fail-open.ts';
import type { RoutingTable } from '../discovery/routing-table.ts';
import { createAlerter, type AlerterOptions } from './alerts.ts';
import type { DashboardModel } from './dashboard-model.ts';

export interface AlertParts {
  webhook: Pick<AlerterOptions, 'url' | 'format' | 'timeoutMs'>;
  service: string;
  logger: Logger;
  model: DashboardModel;
  failOpen: FailOpen;
  catalog: () => readonly CatalogInstance[];
  table: () => RoutingTable;
}

/** Sends the model's incidents and fail-open changes; returns what sends a heal report. */
export function connectAlerts({ webhook, service, logger, model, failOpen, catalog, table }: AlertParts): (report: HealReport) => void {
  const alerter = createAlerter({
    ...webhook, service, logger,
    lookup: (id) => {
      const known = catalog().find((c) => c.id === id) ?? table().byId.get(id);
      return known && { address: known.address, port: known.port, node: known.node, version: known.meta.version ?? null };
    },
  });
  model.incidents.onTransition((transition) => alerter.send(transition));
  // The start is told a second later, with what is served by then: the
  // instances not yet probed join a few milliseconds after the list empties.
  let startAlert: NodeJS.Timeout | undefined;
  model.onFailOpen((active, text, at) => {
    if (active) {
      startAlert = setTimeout(() => {
        startAlert = undefined;
        const state = failOpen.state();
        if (state.active) alerter.sendServiceEvent('fail-open.started', describeFailOpen(service, table().instances.length - table().failOpen.size, state), at);
      }, 1000);
      startAlert.unref();
      return;
    }
    if (startAlert) {
      clearTimeout(startAlert);
      startAlert = undefined;
      return; // over within a second: nothing was told, nothing to end
    }
    alerter.sendServiceEvent('fail-open.ended', text, at);
  });
  return (report) => alerter.sendHeal(report);
}
