// The request path's counters, kept as plain numbers and turned into
// Prometheus series only when /metrics is scraped: a labelled prom-client
// counter hashes its labels on every increment, which shows at thousands of
// requests a second.
import type { FailureKind } from './retry-policy.ts';

/** Upper bounds (seconds) of sempre_request_duration_seconds. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** The counters as plain data, to send to another process. */
export interface CountersSnapshot {
  byStatus: Array<[number, number]>;
  attempts: Array<[string, Array<[string, number]>]>;
  retries: Record<FailureKind, number>;
  durationCounts: number[];
  durationSum: number;
  noInstance: number;
  saturated: number;
}

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

  snapshot(): CountersSnapshot {
    return {
      byStatus: [...this.byStatus],
      attempts: [...this.attempts].map(([instance, byOutcome]) => [instance, [...byOutcome]]),
      retries: { ...this.retries },
      durationCounts: [...this.durationCounts],
      durationSum: this.durationSum,
      noInstance: this.noInstance,
      saturated: this.saturated,
    };
  }

  /** These counters plus other processes' (the workers of one balancer). */
  plus(others: readonly CountersSnapshot[]): ProxyCounters {
    const total = new ProxyCounters();
    for (const part of [this.snapshot(), ...others]) {
      for (const [status, n] of part.byStatus) total.byStatus.set(status, (total.byStatus.get(status) ?? 0) + n);
      for (const [instance, outcomes] of part.attempts) {
        for (const [outcome, n] of outcomes) {
          let byOutcome = total.attempts.get(instance);
          if (!byOutcome) total.attempts.set(instance, (byOutcome = new Map()));
          byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + n);
        }
      }
      for (const kind of Object.keys(total.retries) as FailureKind[]) total.retries[kind] += part.retries[kind] ?? 0;
      part.durationCounts.forEach((n, i) => { total.durationCounts[i]! += n; });
      total.durationSum += part.durationSum;
      total.noInstance += part.noInstance;
      total.saturated += part.saturated;
    }
    return total;
  }
}
