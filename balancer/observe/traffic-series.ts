// Per-second traffic for the last minutes: requests, errors, latency
// percentiles (HDR histogram per second) and each instance's share.
import { build, type Histogram } from 'hdr-histogram-js';

export interface SecondPoint {
  /** Unix time in seconds. */
  t: number;
  requests: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  byInstance: Record<string, number>;
}

interface Bucket {
  t: number;
  requests: number;
  errors: number;
  histogram: Histogram;
  byInstance: Record<string, number>;
}

export class TrafficSeries {
  private readonly points: SecondPoint[] = [];
  private current: Bucket | undefined;
  private readonly keepSeconds: number;

  constructor(keepSeconds = 600) {
    this.keepSeconds = keepSeconds;
  }

  record(status: number, durationMs: number, instance: string | undefined, nowMs: number): void {
    const bucket = this.bucket(Math.floor(nowMs / 1000));
    bucket.requests += 1;
    if (status >= 500 || status === 499) bucket.errors += 1;
    bucket.histogram.recordValue(Math.max(1, Math.round(durationMs * 1000)));
    if (instance) bucket.byInstance[instance] = (bucket.byInstance[instance] ?? 0) + 1;
  }

  /** Closed seconds, oldest first, with empty seconds filled in up to `nowMs`. */
  series(nowMs: number, seconds: number): SecondPoint[] {
    this.bucket(Math.floor(nowMs / 1000)); // closes the previous second if it ended
    const from = Math.floor(nowMs / 1000) - seconds;
    const known = new Map(this.points.filter((p) => p.t >= from).map((p) => [p.t, p]));
    const out: SecondPoint[] = [];
    for (let t = from; t < Math.floor(nowMs / 1000); t += 1) out.push(known.get(t) ?? { t, requests: 0, errors: 0, p50: 0, p90: 0, p99: 0, byInstance: {} });
    return out;
  }

  private bucket(second: number): Bucket {
    if (this.current && this.current.t === second) return this.current;
    if (this.current) this.close(this.current);
    this.current = { t: second, requests: 0, errors: 0, histogram: build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 }), byInstance: {} };
    return this.current;
  }

  private close(bucket: Bucket): void {
    const ms = (percentile: number) => (bucket.requests === 0 ? 0 : Math.round(bucket.histogram.getValueAtPercentile(percentile) / 10) / 100);
    this.points.push({ t: bucket.t, requests: bucket.requests, errors: bucket.errors, p50: ms(50), p90: ms(90), p99: ms(99), byInstance: bucket.byInstance });
    bucket.histogram.destroy();
    const oldest = bucket.t - this.keepSeconds;
    while (this.points.length > 0 && this.points[0]!.t < oldest) this.points.shift();
  }
}
