// A Consul that answers nonsense (a broken proxy in front of it, a bad
// upgrade) must not crash the balancer or empty its table: it keeps serving
// the last known instances, says so in its status, and recovers by itself.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { startConsulTamper, type ConsulTamper } from '../support/consul-tamper.ts';
import { testStack, waitForRequests } from '../support/stack.ts';

const stack = testStack('consul-malformed', 24_000);
let tamper: ConsulTamper;

before(async () => {
  await stack.startConsul();
  await stack.addInstance('app1');
  await stack.addInstance('app2');
  tamper = await startConsulTamper(stack.ports.consulHttp, 24_050);
  // The balancer reads Consul through the tamper; the agents talk to Consul directly.
  // A short blocking wait, so the tampered answers come within the test's patience.
  stack.options.balancerArgs = ['--consul', tamper.url, '--consul-wait', '2s'];
  await stack.startBalancer();
}, { timeout: 60_000 });
after(async () => {
  await stack.stop();
  await tamper?.close();
});

for (const mode of ['garbage', 'html-500', 'no-index'] as const) {
  test(`keeps serving from the last table while Consul answers ${mode}, and recovers when it answers properly again`, async () => {
    const running = startLoad({ url: stack.url, rate: 500, durationMs: 30_000 });
    await waitForRequests(running, 300);
    tamper.setMode(mode);
    const bad = await stack.waitForStatus('the balancer to report Consul as not answering properly', (s) => !s.consul.reachable, 10_000);
    assert.equal(bad.instances.length, 2, 'the table still holds both instances');
    assert.equal(stack.balancer?.running(), true, 'the balancer did not crash');
    await waitForRequests(running, running.records.length + 1000);
    tamper.setMode('pass');
    await stack.waitForStatus('Consul reachable again', (s) => s.consul.reachable && s.instances.length === 2, 10_000);
    const summary = summarize(await running.stop());
    assert.equal(summary.failed, 0, describeSummary(summary));
    assert.ok((summary.byInstance.app1 ?? 0) > 0 && (summary.byInstance.app2 ?? 0) > 0, describeSummary(summary));
  });
}
