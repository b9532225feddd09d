// When every instance is down the balancer says so plainly (503 with a body
// a person can act on), and serves again as soon as one instance returns.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitFor } from '../../lab/processes.ts';
import { testStack } from '../support/stack.ts';

// A short response timeout: a POST stuck on a frozen instance waits for it (never sent again
// elsewhere) until then; the default (60 s) would make the test wait that long.
const stack = testStack('all-down', 22_000, { balancerArgs: ['--response-timeout', '3s'] });

before(async () => { await stack.start(); }, { timeout: 60_000 });
after(async () => { await stack.stop(); });

async function get(): Promise<{ status: number; body: string; servedBy: string | null }> {
  const response = await fetch(stack.url);
  return { status: response.status, body: await response.text(), servedBy: response.headers.get('x-served-by') };
}

test('answers 503 with a clear body when every instance is down, and serves again when one returns', async () => {
  assert.equal((await get()).status, 200);
  stack.app('app1').signal('SIGKILL');
  stack.app('app2').signal('SIGKILL');
  const down = await waitFor('a 503 once Consul lists no healthy instance', async () => {
    const answer = await get();
    return answer.status === 503 ? answer : undefined;
  }, 10_000);
  assert.match(down.body, /^503 Service Unavailable: no healthy instance of service "web"/);

  await stack.startApp('app2');
  const back = await waitFor('a 200 once app2 is back', async () => {
    const answer = await get();
    return answer.status === 200 ? answer : undefined;
  }, 10_000);
  assert.equal(back.servedBy, 'app2');
  assert.match(back.body, /Hello from <span id="instance">app2<\/span>/);
});

test('does not retry a POST that may have reached a hung instance, and says why', async () => {
  // app1 is still down; freeze app2 so the POST is sent and never answered.
  await stack.startApp('app1');
  await stack.waitForStatus('both instances back', (s) => s.instances.filter((i) => i.state !== 'ejected').length === 2, 10_000);
  const frozen = stack.app('app2');
  frozen.signal('SIGSTOP');
  try {
    // Send POSTs until one lands on the frozen app2: it must come back 502, not be replayed on app1.
    const answer = await waitFor('a POST routed to frozen app2', async () => {
      const response = await fetch(stack.url, { method: 'POST', body: 'order=1', signal: AbortSignal.timeout(15_000) });
      const body = await response.text();
      return response.status === 502 ? body : undefined;
    }, 30_000, 0);
    assert.match(answer, /app2 failed \(timeout: no response within \d+ ms\); a POST that may have reached the app is not retried/);
  } finally {
    frozen.signal('SIGCONT');
  }
});
