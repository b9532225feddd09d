import { isAlive } from '../../lab/netns-lab.ts';
import { waitFor } from '../../lab/processes.ts';
import type { Fault } from './fault.ts';
import { labFront, servingAgain } from './balancer-control.ts';

/** How long the balancer may take to serve again before the fault says it did not. */
const SERVE_AGAIN_TIMEOUT_MS = 30_000;

export const balancerRestart: Fault = {
  name: 'balancer-restart',
  summary: "kill -9 the balancer's main process (run-dir/main.pid); its keeper starts it again with the listening sockets it held, so connections wait instead of being refused; the time until the new main process answers a new connection is recorded (single balancer host; the target is ignored)",
  async inject({ lab, say, setTarget, front = labFront(lab), report }) {
    setTarget?.('infra');
    const before = front.mainPid();
    const started = performance.now();
    const action = await front.crash();
    // The killed process's workers may answer for a few milliseconds more (until they see their main process
    // gone and stop accepting): "serving again" is a new main process answering, so wait for it first.
    const restarted = await waitFor('a new main process', () => {
      const pid = front.mainPid();
      return pid !== undefined && pid !== before && isAlive(pid);
    }, SERVE_AGAIN_TIMEOUT_MS, 10).then(() => true, () => false);
    const served = restarted ? await servingAgain(front.url, SERVE_AGAIN_TIMEOUT_MS - (performance.now() - started)) : { at: null, last: 'no new main process' };
    const durationMs = Math.round((served.at ?? performance.now()) - started);
    const detail = `main pid ${before ?? '–'} → ${front.mainPid() ?? '–'}${served.at === null ? `; last answer: ${served.last}` : ''}`;
    report?.({ action, ok: served.at !== null, durationMs, detail });
    say(`${action}: ${served.at === null ? `NOT serving after ${durationMs} ms` : `serving again after ${durationMs} ms`} (${detail})`);
    return async () => {
      // Nothing to undo: the supervisor started it again. One still down is the drill's failure.
      if (served.at === null && (await servingAgain(front.url, 5000)).at === null) throw new Error(`${front.name} does not serve at ${front.url} since the restart (${detail})`);
    };
  },
};
