// Consul is the control plane, not the data path: while it is down the
// balancer keeps serving from the last known table, and it resumes watching
// when Consul returns. Started without Consul, it answers 503 and waits.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { waitFor } from '../../lab/processes.ts';
import { recordFigure, testStack, waitForRequests, waitUntilServing } from '../support/stack.ts';

const stack = testStack('consul-outage', 21_000);

before(async () => { await stack.start(); }, { timeout: 60_000 });
after(async () => { await stack.stop(); });

test('keeps serving every request from the last table while Consul is stopped for 10 s, and resumes watching when it returns', async () => {
  const running = startLoad({ url: stack.url, rate: 500, durationMs: 60_000 });
  await waitForRequests(running, 500);
  await stack.consul?.stop();
  const downAt = Date.now();
  const during = await stack.waitForStatus('the balancer to notice Consul is unreachable', (s) => !s.consul.reachable, 5000);
  assert.equal(during.instances.length, 2, 'both instances stay in the table while Consul is down');
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 10_000 - (Date.now() - downAt)))); // the outage lasts 10 s
  const servedDuringOutage = running.records.filter((r) => running.startedAt + r.intendedMs > downAt + 1000 && r.errorClass === 'ok').length;
  assert.ok(servedDuringOutage > 3000, `requests kept being served during the outage (${servedDuringOutage})`);

  await stack.startConsul();
  const backAt = Date.now();
  // The dev agent lost every registration; the agents register again and the
  // balancer picks them up from its resumed watch.
  await stack.waitForStatus('the balancer to see Consul again with both instances listed by it', (s) => s.consul.reachable && s.instances.filter((i) => i.state !== 'held').length === 2, 15_000);
  recordFigure('Consul back → balancer watching again with both instances', Date.now() - backAt, 'ms');
  for (const id of ['app1', 'app2']) await waitUntilServing(running, id, Date.now(), 10_000);
  const summary = summarize(await running.stop());
  assert.equal(summary.failed, 0, describeSummary(summary));
});

test('follows changes again after the outage: an instance killed after Consul returned leaves the table', async () => {
  stack.app('app2').signal('SIGKILL');
  await stack.waitForStatus('app2 removed by Consul (agent reports it critical)', (s) => !s.instances.some((i) => i.id === 'app2'), 10_000);
  await stack.startApp('app2');
  await stack.waitForStatus('app2 back', (s) => s.instances.some((i) => i.id === 'app2'), 10_000);
});

test('starts without Consul, answers 503 "no healthy instance yet", and serves once Consul answers', async () => {
  const lonely = testStack('consul-late', 21_500);
  try {
    await lonely.startApp('app1');
    // Balancer first, pointing at a Consul that is not running yet.
    const balancer = await lonely.startBalancer();
    const early = await fetch(lonely.url);
    assert.equal(early.status, 503);
    assert.match(await early.text(), /no healthy instance yet: waiting for Consul/);
    assert.equal(balancer.running(), true, 'the balancer keeps running without Consul');

    await lonely.startConsul();
    await lonely.startAgent('app1');
    const servedAt = await waitFor('a 200 through the balancer once Consul answers', async () => {
      const response = await fetch(lonely.url);
      await response.arrayBuffer();
      return response.status === 200 ? Date.now() : undefined;
    }, 15_000);
    assert.ok(servedAt);
  } finally {
    await lonely.stop();
  }
});
