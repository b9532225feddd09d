import type { Fault } from './fault.ts';
import { labFront } from './balancer-control.ts';

export const balancerReload: Fault = {
  name: 'balancer-reload',
  summary: "reload the balancer in place: bin/sempre-balancer-reload --run-dir … (new workers with the code and options on disk take over, the old ones finish); its outcome and duration are recorded (single balancer host; the target is ignored)",
  async inject({ lab, say, setTarget, front = labFront(lab), report }) {
    setTarget?.('infra');
    const started = performance.now();
    const outcome = await front.reload();
    const durationMs = Math.round(performance.now() - started);
    report?.({ ...outcome, durationMs });
    say(`${outcome.action}: ${outcome.ok ? 'taken' : 'REFUSED (the old workers serve on)'} in ${durationMs} ms${outcome.detail ? ` (${outcome.detail})` : ''}`);
    return async () => undefined;
  },
};
