// Per-second traffic for the last minutes: requests, errors, latency
// percentiles (HDR histogram per second) and each instance's share.
import { createRequire } from 'node:module';
import type { Histogram } from 'hdr-histogram-js';

// The pure-JS histogram only: hdr-histogram-js's index also decodes and
// compiles its WebAssembly build, about 6 MB of RSS for a feature not used.
const { constructorFromBucketSize } = createRequire(import.meta.url)('hdr-histogram-js/dist/JsHistogramFactory.js') as {
  constructorFromBucketSize: (bits: 32) => new (lowest: number, highest: number, digits: number) => Histogram;
};
const Int32Histogram = constructorFromBucketSize(32);

/** One second's latencies in µs, as hdr-histogram-js's build() makes them. */
function newHistogram(): Histogram {
  const histogram = new Int32Histogram(1, 3_600_000_000, 2);
  histogram.autoResize = true;
  return histogram;
}

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
  /** Seconds reported by the other workers of this balancer, by second. */
  private readonly external = new Map<number, SecondPoint>();

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
    for (let t = from; t < Math.floor(nowMs / 1000); t += 1) {
      const own = known.get(t) ?? { t, requests: 0, errors: 0, p50: 0, p90: 0, p99: 0, byInstance: {} };
      const other = this.external.get(t);
      out.push(other ? combine(own, other) : own);
    }
    return out;
  }

  /** Closed seconds after `afterT` (a worker's report to worker 0). */
  closedAfter(afterT: number): SecondPoint[] {
    return this.points.filter((p) => p.t > afterT);
  }

  /** Another worker's closed seconds: counted with this one's in series(). */
  absorb(points: readonly SecondPoint[]): void {
    for (const point of points) {
      const known = this.external.get(point.t);
      this.external.set(point.t, known ? combine(known, point) : point);
    }
    const oldest = Math.floor(Date.now() / 1000) - this.keepSeconds;
    for (const t of this.external.keys()) if (t < oldest) this.external.delete(t);
  }

  private bucket(second: number): Bucket {
    if (this.current && this.current.t === second) return this.current;
    if (this.current) this.close(this.current);
    this.current = { t: second, requests: 0, errors: 0, histogram: newHistogram(), byInstance: {} };
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

/**
 * Two processes' view of one second: counts add up; a percentile cannot be
 * combined exactly from two percentiles, so the larger is shown (an upper bound).
 */
function combine(a: SecondPoint, b: SecondPoint): SecondPoint {
  const byInstance = { ...a.byInstance };
  for (const [id, n] of Object.entries(b.byInstance)) byInstance[id] = (byInstance[id] ?? 0) + n;
  return { t: a.t, requests: a.requests + b.requests, errors: a.errors + b.errors, p50: Math.max(a.p50, b.p50), p90: Math.max(a.p90, b.p90), p99: Math.max(a.p99, b.p99), byInstance };
}
