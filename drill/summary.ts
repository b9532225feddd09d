// Pure summaries over request records.
import { percentiles } from './metrics.ts';
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
  let failed = 0;
  let first: number | undefined;
  let last: number | undefined;
  for (const r of records) {
    byClass[r.errorClass] = (byClass[r.errorClass] ?? 0) + 1;
    if (r.servedBy) byInstance[r.servedBy] = (byInstance[r.servedBy] ?? 0) + 1;
    if (r.errorClass !== 'ok') {
      failed += 1;
      first ??= r.intendedMs;
      last = r.intendedMs;
    }
  }
  const { p50, p99, max } = percentiles(records.map((r) => r.latencyMs));
  return {
    total: records.length,
    failed,
    byClass,
    byInstance,
    latencyMs: { p50, p99, max },
    failureWindow: first === undefined || last === undefined ? null : [first, last],
  };
}

export function describeSummary(s: LoadSummary): string {
  const classes = Object.entries(s.byClass).map(([k, v]) => `${k}=${v}`).join(' ');
  const instances = Object.entries(s.byInstance).map(([k, v]) => `${k}=${v}`).join(' ');
  return `${s.total} requests, ${s.failed} failed [${classes}], served by [${instances}], p50 ${s.latencyMs.p50} ms, p99 ${s.latencyMs.p99} ms, max ${s.latencyMs.max} ms`;
}
