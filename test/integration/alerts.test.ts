// Webhook alerts with a real stack and a local receiver: a crash gives one
// "left" with its cause and one "returned" once the app serves again; planned
// maintenance gives none; a receiver that fails once still gets the alert.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { AlertPayload } from '../../balancer/observe/alerts.ts';
import { waitFor } from '../../lab/processes.ts';
import { inRotation, testStack } from '../support/stack.ts';

const received: AlertPayload[] = [];
/** Every delivery that reached the receiver, refused ones included, in order ("event instance"). */
const deliveries: Array<{ alert: string; refused: boolean }> = [];
let refuseNext = 0;
const receiver = createServer(async (req: IncomingMessage, res) => {
  let body = '';
  for await (const chunk of req) body += chunk;
  const alert = JSON.parse(body) as AlertPayload;
  const refused = refuseNext > 0;
  deliveries.push({ alert: `${alert.event} ${alert.instance}`, refused });
  if (refused) {
    // This delivery fails: the balancer must retry it.
    refuseNext -= 1;
    res.writeHead(500).end();
    return;
  }
  assert.equal(req.headers['content-type'], 'application/json');
  received.push(alert);
  res.writeHead(204).end();
});
receiver.listen(0, '127.0.0.1');
await once(receiver, 'listening');
const webhook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/sempre`;

const stack = testStack('alerts', 27_000, { balancerArgs: ['--alert-webhook', webhook] });
before(async () => { await stack.start(); }, { timeout: 60_000 });
after(async () => {
  await stack.stop();
  receiver.close();
});

async function maintenance(id: string, enable: boolean): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${stack.ports.admin}/_sempre/instances/${id}/maintenance`, {
    method: 'POST', headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ enable, reason: 'alerts test' }),
  });
  assert.equal(response.status, 200, await response.text());
}

test('planned maintenance sends no alert', async () => {
  // Nothing is refused here, so a wrong alert is not held back by a retry: the balancer sends an
  // alert as its transition happens, well before app2 is back in rotation. The next test's
  // closing check sees every delivery of the file, so even a late one fails it there.
  await maintenance('app2', true);
  await stack.waitForStatus('app2 out of rotation for maintenance', (s) => !s.instances.some((i) => i.id === 'app2'), 10_000);
  await maintenance('app2', false);
  await stack.waitForStatus('app2 back after maintenance', (s) => inRotation(s, 'app2'), 10_000);
  assert.deepEqual(deliveries, [], 'no alert delivered, and none refused');
});

test('a crash of app1 sends "left" with the cause, then "returned" with the time it was out', async () => {
  refuseNext = 1;
  stack.app('app1').signal('SIGKILL');
  const left = await waitFor('the "left" alert', () => received.find((a) => a.event === 'instance.left' && a.instance === 'app1'), 15_000);
  assert.equal(left.service, 'web');
  assert.match(left.cause, /^(refused|reset|check|deregistered)$/, `a cause a person can read (got ${left.cause}: ${left.detail})`);
  assert.ok(left.detail.length > 0, 'the detail says what failed');
  assert.equal(left.address, '127.0.0.11');
  assert.equal(left.port, stack.ports.app);
  assert.deepEqual(deliveries.filter((d) => d.refused).map((d) => d.alert), ['instance.left app1'], 'the first delivery was refused, so this one is a retry');

  await stack.startApp('app1');
  const returned = await waitFor('the "returned" alert', () => received.find((a) => a.event === 'instance.returned' && a.instance === 'app1'), 20_000);
  assert.equal(returned.cause, left.cause, 'it repeats the cause it left with');
  assert.ok(returned.downForMs !== null && returned.downForMs > 0 && returned.downForMs < 20_000, `down for ${returned.downForMs} ms`);
  assert.ok(Date.parse(returned.at) >= Date.parse(left.at));
  assert.deepEqual(received.map((a) => `${a.event} ${a.instance}`), ['instance.left app1', 'instance.returned app1'], 'exactly one of each, in order');
  assert.deepEqual(deliveries, [
    { alert: 'instance.left app1', refused: true }, { alert: 'instance.left app1', refused: false }, { alert: 'instance.returned app1', refused: false },
  ], 'every delivery of this file, the maintenance test\'s included: the refused one and its retry, then the return');
});
