// The request path's counters, kept as plain numbers and turned into
// Prometheus series only when /metrics is scraped: a labelled prom-client
// counter hashes its labels on every increment, which shows at thousands of
// requests a second.
import type { FailureKind } from './retry-policy.ts';

/** Upper bounds (seconds) of sempre_request_duration_seconds. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export class ProxyCounters {
  readonly byStatus = new Map<number, number>();
  /** instance → outcome (ok, connect, reset, timeout, status) → attempts. */
  readonly attempts = new Map<string, Map<string, number>>();
  readonly retries: Record<FailureKind, number> = { connect: 0, reset: 0, timeout: 0, status: 0 };
  /** Requests per duration bucket (the last slot: above every bound), their sum in seconds. */
  readonly durationCounts = new Array<number>(DURATION_BUCKETS.length + 1).fill(0);
  durationSum = 0;
  noInstance = 0;
  saturated = 0;

  request(status: number, durationMs: number): void {
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    const seconds = durationMs / 1000;
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]!) bucket += 1;
    this.durationCounts[bucket]! += 1;
    this.durationSum += seconds;
  }

  attempt(instance: string, outcome: string): void {
    let byOutcome = this.attempts.get(instance);
    if (!byOutcome) this.attempts.set(instance, (byOutcome = new Map()));
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
  }

  retry(kind: FailureKind): void {
    this.retries[kind] += 1;
  }
}
