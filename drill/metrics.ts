// Pure functions over a drill's request records and timeline: everything a
// report says is computed here, so it can be checked on hand-built streams.
import { build } from 'hdr-histogram-js';
import { countFailuresByKind, type ErrorClass, type FailureKind, type RequestRecord } from './records.ts';

export interface TimelineEvent {
  /** ms since the drill's load started. */
  t: number;
  instance: string;
  source: 'balancer' | 'consul';
  from: string;
  to: string;
}

export interface FaultWindow {
  name: string;
  target: string;
  /** ms since load start. */
  startMs: number;
  endMs: number;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface SecondStats extends Percentiles {
  second: number;
  ok: number;
  failed: number;
  failedByKind: Partial<Record<FailureKind, number>>;
  byInstance: Record<string, number>;
}

export interface DrillMetrics {
  total: number;
  ok: number;
  failed: number;
  availability: number;
  /** Failed requests by kind: an unexpected status (4xx, 5xx, …) or no answer (network). */
  failedByKind: Partial<Record<FailureKind, number>>;
  failedByClass: Partial<Record<ErrorClass, number>>;
  /** First and last failed request's intended start, ms since load start. */
  errorWindow: [number, number] | null;
  /** Fault start → the balancer stops routing to the target (ms). */
  detectMs: number | null;
  /** Fault end → the target serves a request again (ms). */
  recoverMs: number | null;
  /** Fault start → the target's first request in the fault window (scale-out: a new instance getting traffic). */
  firstServedMs: number | null;
  /**
   * Time to full redundancy: fault start → every instance serving again, i.e.
   * the end of the first request the target served among those sent after
   * the fault ended (for a fault that lasts until healed: after its agent
   * said the app passes again), and of one each other instance served after
   * the fault started. Null when one of them never served again.
   */
  fullRedundancyMs: number | null;
  latency: Percentiles;
  faultLatency: Percentiles;
  /**
   * From the first request of the fault window that failed or waited more
   * than INTERRUPTED_AFTER_MS, to the moment the last such request ended:
   * how long visitors saw the page stop (null: never).
   */
  interruptionMs: number | null;
  perSecond: SecondStats[];
}

/** A request slower than this counts as seeing an interruption (a normal one takes a few ms). */
export const INTERRUPTED_AFTER_MS = 250;

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Latency percentiles from an HDR histogram (microsecond resolution, 3 significant digits). */
export function percentiles(latencies: readonly number[]): Percentiles {
  if (latencies.length === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  const histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  for (const ms of latencies) histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
  const at = (p: number) => Math.round(histogram.getValueAtPercentile(p) / 10) / 100;
  const result = { p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: Math.round(histogram.maxValue / 10) / 100 };
  histogram.destroy();
  return result;
}

const OUT_OF_ROTATION = new Set(['ejected', 'absent', 'critical', 'maintenance', 'draining']);

export function computeMetrics(records: readonly RequestRecord[], timeline: readonly TimelineEvent[], fault: FaultWindow | null): DrillMetrics {
  const failed = records.filter((r) => r.errorClass !== 'ok');
  const failedByClass: Partial<Record<ErrorClass, number>> = {};
  for (const r of failed) failedByClass[r.errorClass] = (failedByClass[r.errorClass] ?? 0) + 1;
  const seconds = new Map<number, RequestRecord[]>();
  for (const r of records) {
    const second = Math.floor(r.intendedMs / 1000);
    let bucket = seconds.get(second);
    if (!bucket) seconds.set(second, (bucket = []));
    bucket.push(r);
  }
  const perSecond = [...seconds.entries()].sort((a, b) => a[0] - b[0]).map(([second, rs]): SecondStats => {
    const byInstance: Record<string, number> = {};
    for (const r of rs) if (r.servedBy) byInstance[r.servedBy] = (byInstance[r.servedBy] ?? 0) + 1;
    const bad = rs.filter((r) => r.errorClass !== 'ok').length;
    return { second, ok: rs.length - bad, failed: bad, failedByKind: countFailuresByKind(rs), byInstance, ...percentiles(rs.map((r) => r.latencyMs)) };
  });

  let detectMs: number | null = null;
  let recoverMs: number | null = null;
  let firstServedMs: number | null = null;
  let fullRedundancyMs: number | null = null;
  let faultLatency = percentiles([]);
  let interruptionMs: number | null = null;
  if (fault) {
    const hit = records.filter((r) => r.intendedMs >= fault.startMs && r.intendedMs <= fault.endMs && (r.errorClass !== 'ok' || r.latencyMs > INTERRUPTED_AFTER_MS));
    if (hit.length > 0) interruptionMs = Math.round(Math.max(...hit.map((r) => r.intendedMs + r.latencyMs)) - Math.min(...hit.map((r) => r.intendedMs)));
    const left = timeline.find((e) => e.instance === fault.target && e.source === 'balancer' && e.t >= fault.startMs && OUT_OF_ROTATION.has(e.to));
    detectMs = left ? left.t - fault.startMs : null;
    const back = records.find((r) => r.servedBy === fault.target && r.intendedMs >= fault.endMs);
    recoverMs = back ? Math.max(0, back.intendedMs + back.latencyMs - fault.endMs) : null;
    const first = records.find((r) => r.servedBy === fault.target && r.intendedMs >= fault.startMs);
    firstServedMs = first ? Math.max(0, first.intendedMs + first.latencyMs - fault.startMs) : null;
    faultLatency = percentiles(records.filter((r) => r.intendedMs >= fault.startMs && r.intendedMs <= fault.endMs).map((r) => r.latencyMs));
    fullRedundancyMs = timeToFullRedundancy(records, fault);
  }
  return {
    total: records.length,
    ok: records.length - failed.length,
    failed: failed.length,
    availability: records.length === 0 ? 0 : (records.length - failed.length) / records.length,
    failedByKind: countFailuresByKind(failed),
    failedByClass,
    errorWindow: failed.length === 0 ? null : [Math.min(...failed.map((r) => r.intendedMs)), Math.max(...failed.map((r) => r.intendedMs))],
    detectMs,
    recoverMs,
    firstServedMs,
    fullRedundancyMs,
    latency: percentiles(records.map((r) => r.latencyMs)),
    faultLatency,
    interruptionMs,
    perSecond,
  };
}

function timeToFullRedundancy(records: readonly RequestRecord[], fault: FaultWindow): number | null {
  const instances = new Set([fault.target, ...records.filter((r) => r.intendedMs < fault.startMs && r.servedBy).map((r) => r.servedBy!)]);
  let last = fault.startMs;
  for (const id of instances) {
    const from = id === fault.target ? fault.endMs : fault.startMs;
    const first = records.find((r) => r.servedBy === id && r.intendedMs >= from);
    if (!first) return null;
    last = Math.max(last, first.intendedMs + first.latencyMs);
  }
  return Math.round(last - fault.startMs);
}

export interface SloCheck {
  name: string;
  ok: boolean;
  actual: string;
  wanted: string;
}

/** "availability=100,p99=500ms" → checks; throws on a malformed spec, naming the part. */
export function parseSlo(spec: string): Array<{ key: string; value: number }> {
  return spec.split(',').map((s) => s.trim()).filter(Boolean).map((part) => {
    const match = /^(availability|p50|p90|p99|p999|max|failed)=(\d+(?:\.\d+)?)(ms|s|%)?$/.exec(part);
    if (!match) throw new Error(`drill.slo: "${part}" must be availability=PERCENT, failed=COUNT or p50|p90|p99|p999|max=DURATION (e.g. availability=100,p99=500ms)`);
    const value = Number(match[2]) * (match[3] === 's' ? 1000 : 1);
    return { key: match[1]!, value };
  });
}

export function checkSlo(metrics: DrillMetrics, slo: Array<{ key: string; value: number }>): SloCheck[] {
  return slo.map(({ key, value }) => {
    if (key === 'availability') {
      const actual = metrics.availability * 100;
      return { name: key, ok: actual >= value, actual: `${actual.toFixed(3)}%`, wanted: `≥ ${value}%` };
    }
    if (key === 'failed') return { name: key, ok: metrics.failed <= value, actual: String(metrics.failed), wanted: `≤ ${value}` };
    const actual = metrics.latency[key as keyof Percentiles];
    return { name: key, ok: actual <= value, actual: `${actual} ms`, wanted: `≤ ${value} ms` };
  });
}
