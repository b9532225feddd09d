// Pure summaries over request records.
import { percentiles } from './metrics.ts';
import { countFailuresByKind, describeKinds, type ErrorClass, type FailureKind, type RequestRecord } from './records.ts';

export interface LoadSummary {
  total: number;
  /** Every request whose answer was not the expected one, or that got none. */
  failed: number;
  failedByKind: Partial<Record<FailureKind, number>>;
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
    failedByKind: countFailuresByKind(records),
    byClass,
    byInstance,
    latencyMs: { p50, p99, max },
    failureWindow: first === undefined || last === undefined ? null : [first, last],
  };
}

export function describeSummary(s: LoadSummary): string {
  const classes = Object.entries(s.byClass).map(([k, v]) => `${k}=${v}`).join(' ');
  const instances = Object.entries(s.byInstance).map(([k, v]) => `${k}=${v}`).join(' ');
  const kinds = describeKinds(s.failedByKind);
  return `${s.total} requests, ${s.failed} failed${kinds ? ` (${kinds})` : ''} [${classes}], served by [${instances}], p50 ${s.latencyMs.p50} ms, p99 ${s.latencyMs.p99} ms, max ${s.latencyMs.max} ms`;
}
