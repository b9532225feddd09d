// HAProxy and nginx as balancer-reload and balancer-restart act on them in
// the bench, the way their operators and systemd do on a server:
//   reload  — the signal their docs name, to the master: HUP for nginx (new
//             workers with the new configuration, the old ones finish),
//             USR2 for HAProxy in master-worker mode (-W: the master
//             re-executes itself and its new worker takes the listening
//             sockets over from the old one); taken when a new worker appears;
//   restart — kill -9 of the master, then what systemd does with Debian's
//             units (KillMode=mixed): SIGKILL to the unit's other processes
//             (the workers), and the start again after RestartSec (100 ms by
//             default). Nothing holds their sockets meanwhile: a connection
//             in between is refused.
import { isAlive, KEEPER_RESTART_DELAY_MS, killAll, startInHost, type LabState } from '../lab/netns-lab.ts';
import { waitFor } from '../lab/processes.ts';
import { processTree } from '../lab/process-tree.ts';
import type { Front } from '../drill/faults/fault.ts';

/** How long a reload may take to show a new worker before it counts as refused. */
const RELOAD_TIMEOUT_MS = 10_000;

/** The processes below a peer's master: its workers (and nginx's cache processes, HAProxy's old workers while they finish). */
const workersOf = (pid: number) => processTree(pid).slice(1);

/** A peer started by the bench as lab process `process` (its master in the foreground), reloaded with `reloadSignal`. */
export function peerFront(lab: LabState, name: string, processName: string, url: string, reloadSignal: NodeJS.Signals): Front {
  const master = () => {
    const proc = lab.processes[processName];
    if (!proc || !isAlive(proc.pid)) throw new Error(`${name} is not running`);
    return proc;
  };
  return {
    name,
    url,
    mainPid: () => {
      const proc = lab.processes[processName];
      return proc && isAlive(proc.pid) ? proc.pid : undefined;
    },
    async reload() {
      const { pid } = master();
      const before = new Set(workersOf(pid));
      process.kill(pid, reloadSignal);
      const fresh = await waitFor(`a new ${name} worker`, () => {
        const now = workersOf(pid).filter((p) => !before.has(p));
        return now.length > 0 ? now : undefined;
      }, RELOAD_TIMEOUT_MS, 5).catch(() => undefined);
      return { action: `kill -${reloadSignal.replace(/^SIG/, '')} ${pid} (${name}'s master)`, ok: fresh !== undefined, detail: fresh ? `new worker pid ${fresh.join(', ')}` : `no new worker within ${RELOAD_TIMEOUT_MS / 1000} s` };
    },
    async crash() {
      const proc = master();
      const workers = workersOf(proc.pid);
      process.kill(proc.pid, 'SIGKILL');
      killAll(workers);
      // Started again whatever happens, as systemd would: the bench must not go on without it.
      await waitFor(`${name}'s processes to be gone`, () => !isAlive(proc.pid) && workers.every((p) => !isAlive(p)), 5000).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, KEEPER_RESTART_DELAY_MS));
      startInHost(lab, proc.host, processName, proc.command);
      return `kill -9 ${proc.pid} (${name}'s master), then as systemd: SIGKILL to its ${workers.length} other process(es), started again after ${KEEPER_RESTART_DELAY_MS} ms`;
    },
  };
}
