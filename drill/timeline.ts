// Polls the balancer's status and Consul's health every 100 ms during a
// drill and timestamps every change of an instance's state as each sees it.
import type { LabState } from '../lab/netns-lab.ts';
import type { TimelineEvent } from './metrics.ts';

export interface TimelinePoller {
  events: TimelineEvent[];
  stop(): void;
}

export function pollTimeline(lab: LabState, startedAt: number, intervalMs = 100): TimelinePoller {
  const events: TimelineEvent[] = [];
  const last = new Map<string, string>();
  const note = (source: TimelineEvent['source'], instance: string, state: string) => {
    const key = `${source}:${instance}`;
    const from = last.get(key) ?? 'unknown';
    if (from === state) return;
    last.set(key, state);
    if (from !== 'unknown') events.push({ t: Date.now() - startedAt, instance, source, from, to: state });
  };
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    const balancer = fetch(`${lab.adminUrl}/_sempre/status`, { signal: AbortSignal.timeout(500) }).then(async (r) => {
      const status = (await r.json()) as { instances: Array<{ id: string; state: string }> };
      const seen = new Set(status.instances.map((i) => i.id));
      for (const i of status.instances) note('balancer', i.id, i.state);
      for (const key of last.keys()) if (key.startsWith('balancer:') && !seen.has(key.slice(9))) note('balancer', key.slice(9), 'absent');
    });
    const consul = fetch(`${lab.consulUrl}/v1/health/service/${lab.service}`, { signal: AbortSignal.timeout(500) }).then(async (r) => {
      const entries = (await r.json()) as Array<{ Service: { ID: string }; Checks: Array<{ Status: string; CheckID: string }> }>;
      const seen = new Set(entries.map((e) => e.Service.ID));
      for (const e of entries) {
        const maintenance = e.Checks.some((c) => c.CheckID.startsWith('_service_maintenance'));
        note('consul', e.Service.ID, maintenance ? 'maintenance' : e.Checks.every((c) => c.Status === 'passing') ? 'passing' : 'critical');
      }
      for (const key of last.keys()) if (key.startsWith('consul:') && !seen.has(key.slice(7))) note('consul', key.slice(7), 'absent');
    });
    // A missed poll (Consul down, say) is simply a gap in the timeline.
    void Promise.allSettled([balancer, consul]).then(() => { busy = false; });
  }, intervalMs);
  return { events, stop: () => clearInterval(timer) };
}
