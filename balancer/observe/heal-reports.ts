// Follows what the agents tell Consul of their heals (shared/heal-report.ts)
// for one service, and hands each new step to the dashboard model, alerts
// and metrics. Reports already in Consul when the balancer starts are its
// history: shown, not alerted again.
import type { ConsulClient } from '../../shared/consul-client.ts';
import { HEAL_REPORT_PREFIX, healReportSchema, type HealReport } from '../../shared/heal-report.ts';
import { startBlockingQuery } from '../discovery/blocking-query.ts';

export interface HealReportWatch {
  latest(): readonly HealReport[];
  stop(): void;
}

export function watchHealReports(options: {
  consul: ConsulClient;
  service: string;
  waitMs: number;
  /** A report whose instance, heal number or outcome is new; `history` for those found at start. */
  onReport: (report: HealReport, history: boolean) => void;
}): HealReportWatch {
  const seen = new Map<string, string>();
  let latest: HealReport[] = [];
  let first = true;
  const query = startBlockingQuery({
    consul: options.consul,
    service: options.service,
    endpoint: 'kv-prefix',
    key: `${HEAL_REPORT_PREFIX}/${options.service}/`,
    passing: false,
    waitMs: options.waitMs,
    onFailure: () => undefined, // the routing watch reports Consul's reachability
    onAnswer: (data) => {
      if (data !== undefined && !Array.isArray(data)) return 'expected a JSON array of KV entries';
      const reports: HealReport[] = [];
      for (const entry of (data ?? []) as Array<{ Value?: unknown }>) {
        try {
          const parsed = healReportSchema.safeParse(JSON.parse(String(entry.Value ?? '')));
          if (parsed.success) reports.push(parsed.data);
        } catch {
          // not JSON: not ours to show
        }
      }
      latest = reports;
      for (const report of reports) {
        const step = `${report.heal}:${report.outcome}:${report.at}`;
        if (seen.get(report.instance) === step) continue;
        seen.set(report.instance, step);
        options.onReport(report, first);
      }
      first = false;
      return undefined;
    },
  });
  return { latest: () => latest, stop: () => query.stop() };
}
