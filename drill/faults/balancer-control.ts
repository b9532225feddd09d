// The lab's balancer as balancer-reload and balancer-restart act on it (the
// single balancer host: bin/sempre-balancer under bin/sempre-socket-keeper,
// with its --run-dir), and the wait for a proxy to serve again on a new
// connection, which both faults and the bench's peers share.
import { execFile } from 'node:child_process';
import { get } from 'node:http';
import { join } from 'node:path';
import { targetPid } from '../../lab/app-restarts.ts';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import type { LabState } from '../../lab/netns-lab.ts';
import type { Front } from './fault.ts';

export const RELOAD_COMMAND = join(PROJECT_ROOT, 'bin/sempre-balancer-reload');
/** How long a reload may take before the fault calls it failed (the reload command waits for the outcome itself). */
const RELOAD_TIMEOUT_MS = 60_000;

/** Why the lab cannot run a balancer-reload or balancer-restart ('' when it can). */
export function keeperMissing(lab: LabState): string {
  if (lab.vip) return 'the balancer pair (lab up --balancers 2) runs its balancers without a keeper: use balancer-crash there, or a lab with one balancer';
  if (!lab.processes.balancer?.runDir) return 'this lab\'s balancer does not run under the socket keeper (a lab from before it): `sudo ./sempre lab down` and up again';
  return '';
}

/** The reload command's last JSON line ({seq, ok, reason, at}), or what it printed. */
function describeReload(stdout: string, stderr: string): string {
  const last = stdout.trim().split('\n').at(-1) ?? '';
  try {
    const answer = JSON.parse(last) as { seq?: number; reason?: string };
    return [answer.seq === undefined ? '' : `reload #${answer.seq}`, answer.reason ?? ''].filter(Boolean).join(': ') || last;
  } catch {
    return (last || stderr.trim().split('\n').at(-1) || '(no output)').slice(0, 300);
  }
}

/** The lab's single balancer: reloaded with bin/sempre-balancer-reload, killed by its main PID (run-dir/main.pid). */
export function labFront(lab: LabState): Front {
  const missing = keeperMissing(lab);
  if (missing) throw new Error(missing);
  const proc = lab.processes.balancer!;
  const runDir = proc.runDir!;
  return {
    name: 'sempre',
    url: lab.url,
    mainPid: () => targetPid(proc),
    reload: () => new Promise((resolve, reject) => {
      const args = ['--run-dir', runDir, '--json'];
      execFile(RELOAD_COMMAND, args, { encoding: 'utf8', timeout: RELOAD_TIMEOUT_MS }, (error, stdout, stderr) => {
        const code = (error as { code?: unknown } | null)?.code ?? 0;
        // Exit 1: the balancer refused the new workers (a bad option or certificate) and the old ones serve on.
        if (code !== 0 && code !== 1) reject(new Error(`bin/sempre-balancer-reload failed (${String(code)}): ${stderr.trim().slice(-500)}`));
        else resolve({ action: `bin/sempre-balancer-reload ${args.join(' ')}`, ok: code === 0, detail: describeReload(stdout, stderr) });
      });
    }),
    async crash() {
      const pid = targetPid(proc);
      if (pid === undefined) throw new Error(`no main PID in ${join(runDir, 'main.pid')}: is the balancer running?`);
      process.kill(pid, 'SIGKILL');
      return `kill -9 ${pid} (the balancer's main process; its keeper starts it again)`;
    },
  };
}

/** One GET on a new connection: its status, or the error's code. */
function getOnce(url: string, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    const request = get(url, { agent: false, timeout: timeoutMs }, (res) => res.resume().on('end', () => resolve(res.statusCode ?? 0)).on('error', (e) => resolve((e as { code?: string }).code ?? e.message)));
    request.on('timeout', () => request.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    request.on('error', (e) => resolve((e as { code?: string }).code ?? e.message));
  });
}

/**
 * Waits until a GET on a new connection gets a 2xx, retrying every 20 ms
 * after a refused or failed one; resolves with performance.now() at that
 * answer, or null at the deadline. A connection the kernel holds in a kept
 * socket's queue waits there: its answer comes when the new process accepts.
 */
export async function servingAgain(url: string, timeoutMs: number): Promise<{ at: number; last: string } | { at: null; last: string }> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  while (performance.now() < deadline) {
    const answer = await getOnce(url, Math.max(100, Math.min(10_000, deadline - performance.now())));
    last = String(answer);
    if (typeof answer === 'number' && answer >= 200 && answer < 300) return { at: performance.now(), last };
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { at: null, last };
}
