import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkSlo, computeMetrics, parseSlo, percentile, type TimelineEvent } from '../../drill/metrics.ts';
import type { RequestRecord } from '../../drill/records.ts';

// 10 s at 100 req/s; app1 is killed at 3 s; requests intended in 3.0–3.2 s fail
// (refused); app1 is back serving from 7.5 s.
function stream(): RequestRecord[] {
  const records: RequestRecord[] = [];
  for (let i = 0; i < 1000; i += 1) {
    const t = i * 10;
    const failed = t >= 3000 && t < 3200;
    const servedBy = failed ? null : t >= 3000 && t < 7500 ? 'app2' : i % 2 === 0 ? 'app1' : 'app2';
    records.push({ intendedMs: t, latencyMs: failed ? 1 : 1 + (i % 100) / 10, status: failed ? 0 : 200, errorClass: failed ? 'refused' : 'ok', servedBy });
  }
  return records;
}

const timeline: TimelineEvent[] = [
  { t: 1000, instance: 'app2', source: 'balancer', from: 'slow-start', to: 'healthy' },
  { t: 3140, instance: 'app1', source: 'balancer', from: 'healthy', to: 'ejected' },
  { t: 4000, instance: 'app1', source: 'consul', from: 'passing', to: 'critical' },
  { t: 7400, instance: 'app1', source: 'balancer', from: 'absent', to: 'slow-start' },
];
const fault = { name: 'crash', target: 'app1', startMs: 3000, endMs: 7000 };

test('availability, failures by class and the error window come from the records', () => {
  const m = computeMetrics(stream(), timeline, fault);
  assert.equal(m.total, 1000);
  assert.equal(m.failed, 20);
  assert.equal(m.availability, 0.98);
  assert.deepEqual(m.failedByClass, { refused: 20 });
  assert.deepEqual(m.errorWindow, [3000, 3190]);
});

test('time to detect is fault start → the balancer stops routing to the target; time to recover is fault end → it serves again', () => {
  const m = computeMetrics(stream(), timeline, fault);
  assert.equal(m.detectMs, 140);
  // First app1 record at or after 7000 ms is intended at 7500 ms with latency 1 + (750 % 100)/10 = 6 ms.
  assert.equal(m.recoverMs, 506);
});

test('no detection and no recovery are reported as such, not as zero', () => {
  const m = computeMetrics(stream().map((r) => ({ ...r, servedBy: r.servedBy === 'app1' ? 'app2' : r.servedBy })), [], fault);
  assert.equal(m.detectMs, null);
  assert.equal(m.recoverMs, null);
});

test('percentiles (HDR histogram) match an independent nearest-rank computation within its precision', () => {
  const records = stream();
  const sorted = records.map((r) => r.latencyMs).sort((a, b) => a - b);
  const m = computeMetrics(records, timeline, fault);
  const close = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) <= Math.max(0.01, expected * 0.001), `${actual} vs ${expected}`);
  close(m.latency.p50, percentile(sorted, 50));
  close(m.latency.p99, percentile(sorted, 99));
  close(m.latency.p999, percentile(sorted, 99.9));
  close(m.latency.max, sorted.at(-1)!);
  assert.equal(percentile([], 50), 0);
  assert.equal(percentile([5], 99), 5);
  // A skewed stream: 990 fast requests and 10 of 750 ms.
  const skewed = computeMetrics(Array.from({ length: 1000 }, (_v, i) => ({ intendedMs: i, latencyMs: i < 990 ? 2 : 750, status: 200, errorClass: 'ok' as const, servedBy: 'a' })), [], null);
  close(skewed.latency.p99, 2);
  close(skewed.latency.p999, 750);
});

test('per second: outcomes and each instance\'s share', () => {
  const m = computeMetrics(stream(), timeline, fault);
  assert.equal(m.perSecond.length, 10);
  assert.deepEqual(m.perSecond[0]?.byInstance, { app1: 50, app2: 50 });
  assert.deepEqual([m.perSecond[3]?.ok, m.perSecond[3]?.failed], [80, 20]);
  assert.deepEqual(m.perSecond[5]?.byInstance, { app2: 100 });
});

test('SLOs: parsed with named errors, checked against the metrics', () => {
  assert.deepEqual(parseSlo('availability=100,p99=500ms,max=2s'), [{ key: 'availability', value: 100 }, { key: 'p99', value: 500 }, { key: 'max', value: 2000 }]);
  assert.throws(() => parseSlo('p98=1s'), /drill\.slo: "p98=1s" must be/);
  const m = computeMetrics(stream(), timeline, fault);
  const checks = checkSlo(m, parseSlo('availability=99,failed=0,p99=50ms'));
  assert.deepEqual(checks.map((c) => [c.name, c.ok]), [['availability', false], ['failed', false], ['p99', true]]);
  assert.equal(checks[0]?.actual, '98.000%');
});

test('interruption: from the first failed or slow request of the fault window to when the last one ended', () => {
  const m = computeMetrics(stream(), timeline, fault);
  // Failures intended 3000–3190 ms, each taking 1 ms.
  assert.equal(m.interruptionMs, 191);
  const slow = stream().map((r) => (r.intendedMs === 5000 ? { ...r, latencyMs: 1200 } : r));
  assert.equal(computeMetrics(slow, timeline, fault).interruptionMs, 5000 + 1200 - 3000);
  const calm = stream().map((r) => ({ ...r, errorClass: 'ok' as const, status: 200 }));
  assert.equal(computeMetrics(calm, timeline, fault).interruptionMs, null);
});
