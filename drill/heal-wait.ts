// What the agents reported of their heals, as the balancer shows it
// (/_sempre/status `heals`), and the wait of a drill whose fault lasts until
// its target is healed.
import type { LabState } from '../lab/netns-lab.ts';
import type { HealReport } from '../shared/heal-report.ts';

/** The outcomes that end a heal, one way or another. */
const ENDED = new Set<HealReport['outcome']>(['healed', 'not-back', 'restart-failed', 'needs-person']);
const POLL_MS = 200;

export async function healReports(lab: LabState): Promise<HealReport[]> {
  const response = await fetch(`${lab.adminUrl}/_sempre/status`, { signal: AbortSignal.timeout(1000) });
  return ((await response.json()) as { heals?: HealReport[] }).heals ?? [];
}

/**
 * The first report of `target` since `sinceWallMs` that ends a heal (healed,
 * not-back, restart-failed, needs-person); null when none came within
 * `timeoutMs` or the drill was interrupted. A status that could not be read
 * is asked again.
 */
export async function waitForHeal(lab: LabState, target: string, sinceWallMs: number, timeoutMs: number, interrupted: AbortSignal): Promise<HealReport | null> {
  const deadline = Date.now() + timeoutMs;
  while (!interrupted.aborted && Date.now() < deadline) {
    const reports = await healReports(lab).catch(() => []);
    const ended = reports.find((r) => r.instance === target && ENDED.has(r.outcome) && Date.parse(r.at) >= sinceWallMs);
    if (ended) return ended;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, POLL_MS);
      interrupted.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }
  return null;
}
