// A process and its descendants, from /proc: the balancer is a main process
// and its workers (balancer/lifecycle/main-process.ts), and under the socket
// keeper one level deeper, so its CPU time and memory are the whole tree's.
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { parseProcStat, parseProcStatus } from '../agent/heal/evidence.ts';

const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Every process's parent, from /proc. */
function parents(): Map<number, number> {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = read(`/proc/${entry}/stat`);
    if (stat) parentOf.set(Number(entry), parseProcStat(stat).ppid);
  }
  return parentOf;
}

/** `pid` and every process below it (empty if it is gone). */
export function processTree(pid: number): number[] {
  const parentOf = parents();
  if (!parentOf.has(pid)) return [];
  const tree = [pid];
  for (let i = 0; i < tree.length; i += 1) for (const [child, parent] of parentOf) if (parent === tree[i]) tree.push(child);
  return tree;
}

/** The children of `pid` that run `script` (a balancer main process's workers: their command line names balancer/main.ts). */
export function childrenRunning(pid: number, script: string): number[] {
  return [...parents()].filter(([child, parent]) => parent === pid && (read(`/proc/${child}/cmdline`) ?? '').includes(script)).map(([child]) => child);
}

/** The workers of the balancer whose main process is `main`, or, with `underKeeper`, is the socket keeper `main`'s child. */
export function balancerWorkers(main: number, script: string, underKeeper = false): number[] {
  return (underKeeper ? childrenRunning(main, script) : [main]).flatMap((pid) => childrenRunning(pid, script));
}

/** A per-process figure added up over `pid` and every process below it; NaN if `pid` is gone (a process gone meanwhile adds 0). */
function sumOverTree(pid: number, figure: (p: number) => number): number {
  const pids = processTree(pid);
  return pids.length === 0 ? NaN : pids.reduce((sum, p) => sum + (figure(p) || 0), 0);
}

/** CPU seconds (user + system, all threads) the tree has used so far; NaN if `pid` is gone. */
export function treeCpuSeconds(pid: number): number {
  return sumOverTree(pid, (p) => parseProcStat(read(`/proc/${p}/stat`) ?? '').cpuTicks) / CLOCK_TICKS_PER_S;
}

/** Resident memory in MiB of one process (NaN if gone). */
export function rssMiB(pid: number): number {
  const status = read(`/proc/${pid}/status`);
  return status === undefined ? NaN : parseProcStatus(status).rssBytes / (1024 * 1024);
}

/**
 * Proportional set size in MiB of the whole tree (NaN if gone): each page
 * shared by n processes counts 1/n, so the pages of the node executable that
 * a main process and its worker both map count once, where the sum of their
 * RSS counts them twice.
 */
export function treePssMiB(pid: number): number {
  return sumOverTree(pid, (p) => Number(/^Pss:\s+(\d+) kB/m.exec(read(`/proc/${p}/smaps_rollup`) ?? '')?.[1] ?? 0) / 1024);
}

/** Resident memory in MiB of the whole tree (NaN if gone). */
export function treeRssMiB(pid: number): number {
  return sumOverTree(pid, rssMiB);
}

/** Nanoseconds a thread has spent on a CPU and waiting in a run queue for one, from /proc/<pid>/task/<tid>/schedstat. */
export interface ThreadTimes { runNs: number; waitNs: number }

/** Every thread of `pid`'s tree, by thread id (empty if it is gone). */
export function treeThreadTimes(pid: number): Map<number, ThreadTimes> {
  const times = new Map<number, ThreadTimes>();
  for (const p of processTree(pid)) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const [runNs, waitNs] = (read(`/proc/${p}/task/${tid}/schedstat`) ?? '').split(' ').map(Number);
      if (Number.isFinite(runNs) && Number.isFinite(waitNs)) times.set(Number(tid), { runNs: runNs!, waitNs: waitNs! });
    }
  }
  return times;
}
