// Pure helpers of the per-core comparison (bench/per-core.ts): the median of
// its rounds and each core's busy share from /proc/stat, kept apart from the
// lab so the unit tests can read them.
import type { ThreadTimes } from '../lab/process-tree.ts';

/** The middle value; for an even count, the mean of the two middle ones (NaN for none). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One CPU's counters from /proc/stat, in clock ticks: all time, and the time it was doing anything. */
export interface CpuTicks { total: number; busy: number }

/**
 * The per-CPU lines of /proc/stat (`cpu0 user nice system idle iowait irq
 * softirq steal guest guest_nice`), by CPU number. Busy is everything but
 * idle and iowait: softirq counts (a proxy's packets are handled there) and
 * so does steal (the core was not free for the proxy either). guest and
 * guest_nice are already inside user and nice.
 */
export function parseProcStatCpus(text: string): Map<number, CpuTicks> {
  const cpus = new Map<number, CpuTicks>();
  for (const line of text.split('\n')) {
    const match = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = match[2]!.trim().split(/\s+/).map(Number);
    const total = user + nice + system + idle + iowait + irq + softirq + steal;
    cpus.set(Number(match[1]), { total, busy: total - idle - iowait });
  }
  return cpus;
}

/** The share (0–1, two decimals) of the time between two readings that `cpu` was busy; NaN if it was not read or no tick passed. */
export function busyShare(before: Map<number, CpuTicks>, after: Map<number, CpuTicks>, cpu: number): number {
  const a = before.get(cpu);
  const b = after.get(cpu);
  if (!a || !b || b.total <= a.total) return NaN;
  return Math.round(((b.busy - a.busy) / (b.total - a.total)) * 100) / 100;
}

/**
 * The share (0–1, two decimals) of `wallNs` in which a proxy's busiest
 * thread (the one that ran longest between the readings: its event loop)
 * had work: running, or runnable and waiting for the CPU. The rest it slept
 * waiting for work, which on a pinned proxy means the client side sent too
 * little. Other processes on the proxy's core make it wait, not sleep, so a
 * busy neighbour does not pass for a saturated proxy (core 1's busy share
 * would). A thread that started between the readings counts from zero.
 */
export function busiestThreadBusyShare(before: Map<number, ThreadTimes>, after: Map<number, ThreadTimes>, wallNs: number): number {
  let busiest: { run: number; wait: number } | undefined;
  for (const [tid, b] of after) {
    const a = before.get(tid) ?? { runNs: 0, waitNs: 0 };
    const run = b.runNs - a.runNs;
    if (!busiest || run > busiest.run) busiest = { run, wait: b.waitNs - a.waitNs };
  }
  if (!busiest || wallNs <= 0) return NaN;
  return Math.round(Math.min(1, (busiest.run + busiest.wait) / wallNs) * 100) / 100;
}

/**
 * A proxy counts as saturated when its busiest thread had work this share
 * of the run or more: below it, the proxy waited for requests, so its req/s
 * was set by the client side (wrk, the apps and Consul on core 0), not by
 * what the proxy can do on one core.
 */
export const SATURATED_BUSY_SHARE = 0.9;
