// A deadlocked app (main thread blocked, 0% CPU) that clients keep
// connecting to, as under real traffic: connections from the operator's
// address on the lab's bridge fill its accept queue (its listener's backlog,
// read with ss inside the host, and a few more). Only to the lab's addresses.
import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { listenerOf, parseSs } from '../../agent/heal/evidence.ts';
import { LAB_ADDRESSES, type LabState } from '../../lab/netns-lab.ts';
import { waitFor } from '../../lab/processes.ts';
import { assertSafeTarget } from '../load-generator.ts';
import type { Fault } from './fault.ts';
import { appUrl, hangApp, setAppFault } from './support.ts';

/** Connections beyond the backlog: the queue holds one past it, and the kernel drops the rest's SYNs. */
const BEYOND_BACKLOG = 16;

function acceptQueueLimit(lab: LabState, target: string, url: URL): number {
  const text = execFileSync('ip', ['netns', 'exec', lab.hosts[target]!.namespace, 'ss', '-H', '-l', '-t', '-n'], { encoding: 'utf8' });
  const listener = listenerOf(parseSs(text, 'LISTEN'), url.hostname, Number(url.port));
  if (!listener) throw new Error(`no listener for ${url.host} in ${target}: ${text.trim()}`);
  return listener.acceptQueueLimit;
}

export const hungAcceptQueue: Fault = {
  name: 'hung-accept-queue',
  summary: "the target's app deadlocks for good (demo app mode=deadlock) and connections from the operator's address fill its accept queue: the drill lasts until its agent heals it; the revert closes them and kills an app still blocked",
  lastsUntilHealed: true,
  async inject({ lab, target, say }) {
    const url = new URL(appUrl(target));
    assertSafeTarget(url, LAB_ADDRESSES);
    return hangApp(lab, target, async () => {
      const limit = acceptQueueLimit(lab, target, url);
      await setAppFault(target, 'mode=deadlock');
      await waitFor(`${target}'s app to stop answering`, async () => !(await fetch(`${url.origin}/healthz`, { signal: AbortSignal.timeout(300) }).then(() => true, () => false)), 5000);
      const sockets: Socket[] = Array.from({ length: limit + BEYOND_BACKLOG }, () => connect({ host: url.hostname, port: Number(url.port) }).on('error', () => undefined));
      const queued = await waitFor(`the connections to fill ${target}'s accept queue`, () => {
        const open = sockets.filter((s) => s.readyState === 'open').length;
        return open >= limit ? open : undefined;
      }, 10_000).catch(() => sockets.filter((s) => s.readyState === 'open').length);
      say(`${queued} of ${sockets.length} connections queued at ${target}'s app (accept queue limit ${limit})`);
      return () => { for (const socket of sockets) socket.destroy(); };
    });
  },
};
