// What an agent tells Consul of each heal of its app, for the balancers'
// dashboards, status, metrics and alerts: one KV entry per instance under
// sempre/heal-report/<service>/<instance>, the latest heal (the whole
// evidence record stays on the app host, in --evidence-dir).
import { z } from 'zod';

export const HEAL_REPORT_PREFIX = 'sempre/heal-report';

export function healReportKey(service: string, instance: string): string {
  return `${HEAL_REPORT_PREFIX}/${service}/${instance}`;
}

export const healReportSchema = z.object({
  instance: z.string(),
  /** Counts up with each heal of this instance since its agent started: a balancer tells a new heal from an update of the same one. */
  heal: z.number().int(),
  /**
   * restarting: evidence taken, restart asked for; healed: the app passes
   * again; not-back: it did not pass within the grace; restart-failed;
   * needs-person: the budget is spent and the app is still hung; not-fixable:
   * the app answers its health endpoint with an error, which a restart does
   * not fix (not restarted).
   */
  outcome: z.enum(['restarting', 'healed', 'not-back', 'restart-failed', 'needs-person', 'not-fixable']),
  at: z.string(),
  diagnosis: z.string(),
  /** The first failed probe's output. */
  probe: z.string(),
  failingForMs: z.number(),
  /** From the first failed probe until the app passed again (healed only). */
  outForMs: z.number().nullable(),
  host: z.string(),
  evidenceFile: z.string().nullable(),
  healsInWindow: z.number().int(),
  budget: z.number().int(),
  detail: z.string(),
  /** The evidence record as taken on the app host (evidence.ts), for the dashboard; null when none was taken. */
  evidence: z.record(z.string(), z.unknown()).nullable().optional(),
});

export type HealReport = z.infer<typeof healReportSchema>;
