// Pure summaries over request records.
import { build } from 'hdr-histogram-js';
import type { ErrorClass, RequestRecord } from './records.ts';

export interface LoadSummary {
  total: number;
  failed: number;
  byClass: Partial<Record<ErrorClass, number>>;
  byInstance: Record<string, number>;
  latencyMs: { p50: number; p99: number; max: number };
  /** Intended start of the first and last failed request, ms since start. */
  failureWindow: [number, number] | null;
}

export function summarize(records: readonly RequestRecord[]): LoadSummary {
  const byClass: Partial<Record<ErrorClass, number>> = {};
  const byInstance: Record<string, number> = {};
  const histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000, numberOfSignificantValueDigits: 3 });
  let failed = 0;
  let first: number | undefined;
  let last: number | undefined;
  for (const r of records) {
    byClass[r.errorClass] = (byClass[r.errorClass] ?? 0) + 1;
    if (r.servedBy) byInstance[r.servedBy] = (byInstance[r.servedBy] ?? 0) + 1;
    // Recorded in microseconds for sub-millisecond resolution.
    histogram.recordValue(Math.max(1, Math.round(r.latencyMs * 1000)));
    if (r.errorClass !== 'ok') {
      failed += 1;
      first ??= r.intendedMs;
      last = r.intendedMs;
    }
  }
  const ms = (us: number) => Math.round(us / 10) / 100;
  const summary = {
    total: records.length,
    failed,
    byClass,
    byInstance,
    latencyMs: { p50: ms(histogram.getValueAtPercentile(50)), p99: ms(histogram.getValueAtPercentile(99)), max: ms(histogram.maxValue) },
    failureWindow: first === undefined || last === undefined ? null : [first, last] as [number, number],
  };
  histogram.destroy();
  return summary;
}

export function describeSummary(s: LoadSummary): string {
  const classes = Object.entries(s.byClass).map(([k, v]) => `${k}=${v}`).join(' ');
  const instances = Object.entries(s.byInstance).map(([k, v]) => `${k}=${v}`).join(' ');
  return `${s.total} requests, ${s.failed} failed [${classes}], served by [${instances}], p50 ${s.latencyMs.p50} ms, p99 ${s.latencyMs.p99} ms, max ${s.latencyMs.max} ms`;
}
