// The central promise, with real processes and a real Consul: under a
// constant 500 GET/s through the balancer, the page stays up while app1
// crashes, hangs, loses its agent or is drained, and a new instance joins.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { waitFor } from '../../lab/processes.ts';
import { inRotation, recordFigure, testStack, waitForRequests, waitUntilServing } from '../support/stack.ts';

const RATE = 500;
const stack = testStack('failover', 20_000);

before(async () => { await stack.start(); }, { timeout: 60_000 });
after(async () => { await stack.stop(); });

function load(durationMs = 60_000) {
  return startLoad({ url: stack.url, rate: RATE, durationMs });
}

test('both instances serve the page, each named by x-served-by', async () => {
  const records = await load(3000).done;
  const summary = summarize(records);
  assert.equal(summary.failed, 0, describeSummary(summary));
  assert.ok(summary.total >= 1400, `expected ~1500 requests at ${RATE}/s for 3 s, got ${summary.total}`);
  for (const id of ['app1', 'app2']) {
    assert.ok((summary.byInstance[id] ?? 0) > summary.total * 0.25, `${id} should get a fair share: ${describeSummary(summary)}`);
  }
  recordFigure('steady 500 GET/s p50 latency through the balancer', summary.latencyMs.p50, 'ms');
});

test('keeps every GET answered when app1 is killed with SIGKILL, and takes app1 back once it restarts', async () => {
  const running = load();
  await waitForRequests(running, 500);
  const killedAt = Date.now();
  stack.app('app1').signal('SIGKILL');
  const out = await stack.waitForStatus('app1 out of rotation', (s) => !inRotation(s, 'app1'), 10_000);
  const app1 = out.instances.find((i) => i.id === 'app1') as { since?: string } | undefined;
  const detectedAt = app1?.since ? Date.parse(app1.since) : Date.now();
  recordFigure('kill -9 of app1 → no more routing to it', Math.max(0, detectedAt - killedAt), 'ms');

  await stack.startApp('app1');
  const restartedAt = Date.now();
  const servingAt = await waitUntilServing(running, 'app1', restartedAt, 20_000);
  recordFigure('app1 restarted → serving again', servingAt - restartedAt, 'ms');
  const summary = summarize(await running.stop());
  assert.equal(summary.failed, 0, describeSummary(summary));
  recordFigure('kill -9 app1: max latency', summary.latencyMs.max, 'ms');
});

test('keeps every GET answered while app1 is frozen with SIGSTOP for 5 s, and uses it again after SIGCONT', async () => {
  const running = load();
  await waitForRequests(running, 500);
  const app = stack.app('app1');
  app.signal('SIGSTOP');
  try {
    await stack.waitForStatus('app1 out of rotation while frozen', (s) => !inRotation(s, 'app1'), 5000);
    await new Promise((resolve) => setTimeout(resolve, 5000)); // the fault lasts 5 s
  } finally {
    app.signal('SIGCONT');
  }
  const resumedAt = Date.now();
  const servingAt = await waitUntilServing(running, 'app1', resumedAt, 20_000);
  recordFigure('SIGCONT of app1 → serving again', servingAt - resumedAt, 'ms');
  const summary = summarize(await running.stop());
  assert.equal(summary.failed, 0, describeSummary(summary));
  recordFigure('SIGSTOP app1 5 s: p99 / max latency', `${summary.latencyMs.p99} / ${summary.latencyMs.max}`, 'ms');
});

test("takes app1 out of rotation when its agent is killed with SIGKILL (TTL expiry), with no failed request", async () => {
  const running = load();
  await waitForRequests(running, 300);
  const killedAt = Date.now();
  stack.agent('app1').signal('SIGKILL');
  await stack.waitForStatus('app1 to leave the table after its TTL expires', (s) => !s.instances.some((i) => i.id === 'app1'), 15_000);
  recordFigure('kill -9 of app1 agent → app1 out of the table (TTL 3 s)', Date.now() - killedAt, 'ms');
  await waitForRequests(running, running.records.length + 250);
  await stack.startAgent('app1');
  const restartedAt = Date.now();
  await waitUntilServing(running, 'app1', restartedAt, 20_000);
  const summary = summarize(await running.stop());
  assert.equal(summary.failed, 0, describeSummary(summary));
});

test('drains app1 and removes it from Consul on SIGTERM to its agent, with no failed request', async () => {
  const running = load();
  await waitForRequests(running, 300);
  const agent = stack.agent('app1');
  const stoppedAt = Date.now();
  agent.signal('SIGTERM');
  await stack.waitForStatus('app1 out of the table once in maintenance', (s) => !s.instances.some((i) => i.id === 'app1'), 5000);
  recordFigure('SIGTERM to app1 agent → out of the balancer table', Date.now() - stoppedAt, 'ms');
  const exit = await agent.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, 'the agent exits 0 after draining');
  const registered = await (await fetch(`${stack.consulUrl}/v1/agent/services`)).json() as Record<string, unknown>;
  assert.equal('app1' in registered, false, 'app1 is deregistered from Consul');
  await waitForRequests(running, running.records.length + 250);
  const tail = running.records.filter((r) => running.startedAt + r.intendedMs > Date.now() - 400);
  assert.ok(tail.length > 0 && tail.every((r) => r.servedBy === 'app2'), 'only app2 serves after the drain');
  await stack.startAgent('app1');
  await waitUntilServing(running, 'app1', Date.now(), 20_000);
  const summary = summarize(await running.stop());
  assert.equal(summary.failed, 0, describeSummary(summary));
});

test('sends traffic to a third app + agent pair started during the run, with no configuration change', async () => {
  const running = load();
  await waitForRequests(running, 300);
  const startedAt = Date.now();
  await stack.addInstance('app3');
  const registeredAt = Date.now();
  const firstServed = await waitUntilServing(running, 'app3', startedAt, 10_000);
  recordFigure('app3 (app + agent) started → first request served by app3', firstServed - startedAt, 'ms');
  recordFigure('app3 registered in Consul → first request served by app3', Math.max(0, firstServed - registeredAt), 'ms');
  await waitFor('app3 at full share', async () => (await stack.status()).instances.find((i) => i.id === 'app3')?.state === 'healthy', 10_000);
  await waitForRequests(running, running.records.length + 500);
  const summary = summarize(await running.stop());
  assert.equal(summary.failed, 0, describeSummary(summary));
  assert.ok((summary.byInstance.app3 ?? 0) > 0, 'app3 served requests');
  // Back to two instances for whatever runs next.
  await stack.removeInstance('app3');
});

test('leaves a slow but responsive instance in rotation: its health probe answers, so it is not ejected as stalled', async () => {
  const app1 = 'http://127.0.0.11:20020';
  const running = load();
  try {
    await waitForRequests(running, 300);
    const before = (await stack.status()).instances.find((i) => i.id === 'app1')?.ejections ?? 0;
    await fetch(`${app1}/_fault?mode=slow&ms=1500`, { method: 'PUT' });
    const slowFrom = Date.now();
    await waitFor('slow answers from app1', () => running.records.some((r) => r.servedBy === 'app1' && running.startedAt + r.intendedMs > slowFrom && r.latencyMs >= 1400), 10_000);
    const after = (await stack.status()).instances.find((i) => i.id === 'app1');
    assert.equal(after?.ejections, before, 'app1 was not ejected');
  } finally {
    await fetch(`${app1}/_fault?mode=none`, { method: 'PUT' });
  }
  const summary = summarize(await running.stop());
  assert.equal(summary.failed, 0, describeSummary(summary));
});
