// Pure helpers of the per-core comparison (bench/per-core.ts): the median of
// its rounds and each core's busy share from /proc/stat, kept apart from the
// lab so the unit tests can read them.

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
 * A proxy's core counts as saturated at this busy share or more: below it,
 * the proxy had idle time on its own core, so its req/s was set by the
 * client side (wrk, the apps and Consul on core 0), not by what the proxy
 * can do on one core.
 */
export const SATURATED_BUSY_SHARE = 0.9;
