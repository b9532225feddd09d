import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkSlo, computeMetrics, parseSlo, percentile, type TimelineEvent } from '../../drill/metrics.ts';
import { classifyStatus, type RequestRecord } from '../../drill/records.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { parseWrk } from '../../bench/wrk-output.ts';

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
  assert.deepEqual(m.failedByKind, { network: 20 });
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
  assert.equal(m.fullRedundancyMs, null, 'app1 never served again: no full redundancy');
});

test('time to full redundancy is fault start → the target serving a request sent after the fault ended, the others serving too', () => {
  // app1 serves again at 7500 ms (+6 ms); app2 served all along.
  assert.equal(computeMetrics(stream(), timeline, fault).fullRedundancyMs, 4506);
  // A fault that ended (the agent said healed) at 7600 ms: app1's first request after it is at 7600 ms (+7 ms).
  assert.equal(computeMetrics(stream(), timeline, { ...fault, endMs: 7600 }).fullRedundancyMs, 4607);
  // app2 never serves after the fault started: not full redundancy, whatever app1 does.
  const withoutApp2 = stream().filter((r) => !(r.servedBy === 'app2' && r.intendedMs >= 3000));
  assert.equal(computeMetrics(withoutApp2, timeline, fault).fullRedundancyMs, null);
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

test('an answer other than the expected one is a failure by its kind: a 404, 429 or 400 from the balancer is not "ok"', () => {
  assert.deepEqual([200, 204, 301, 400, 404, 429, 502, 503].map((s) => classifyStatus(s)), ['ok', 'ok', '3xx', '4xx', '4xx', '4xx', '5xx', '5xx']);
  assert.deepEqual([502, 200, 503].map((s) => classifyStatus(s, 502)), ['ok', '2xx', '5xx'], 'a test that names a status expects exactly that one');
  // 100 requests: one 404 (a route table rebuilt), one 429, one 503, one reset.
  const statuses = [404, 429, 503, 0];
  const records: RequestRecord[] = Array.from({ length: 100 }, (_v, i) => {
    const status = i < statuses.length ? statuses[i]! : 200;
    return { intendedMs: i * 10, latencyMs: 2, status, errorClass: status === 0 ? 'reset' : classifyStatus(status), servedBy: status === 200 ? 'app1' : null };
  });
  const summary = summarize(records);
  assert.equal(summary.failed, 4);
  assert.deepEqual(summary.failedByKind, { '4xx': 2, '5xx': 1, network: 1 });
  assert.match(describeSummary(summary), /^100 requests, 4 failed \(4xx 2, 5xx 1, network 1\)/);
  const m = computeMetrics(records, [], null);
  assert.equal(m.failed, 4);
  assert.deepEqual(m.failedByKind, { '4xx': 2, '5xx': 1, network: 1 });
  assert.deepEqual(m.perSecond[0]?.failedByKind, { '4xx': 2, '5xx': 1, network: 1 });
  assert.equal(m.availability, 0.96);
});

test("wrk's non-2xx/3xx answers and socket errors are read, since its req/s counts them too", () => {
  const clean = parseWrk('  27724 requests in 1.00s, 3.44MB read\nRequests/sec:  27649.07\n');
  assert.deepEqual([clean.requests, clean.wrongAnswers, clean.socketErrors], [27724, 0, 0]);
  const wrong = parseWrk('  27724 requests in 1.00s, 3.44MB read\n  Socket errors: connect 0, read 3, write 0, timeout 2\n  Non-2xx or 3xx responses: 27724\nRequests/sec:  27649.07\n');
  assert.deepEqual([wrong.wrongAnswers, wrong.socketErrors], [27724, 5]);
});
