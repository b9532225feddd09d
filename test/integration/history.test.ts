// Issue 21, item 4: history that survives. A real Consul, the demo apps and
// their agents, the balancer with an alert receiver: an incident and the
// event log are still on the dashboard after the balancer restarts, the
// incident goes on without a second alert, and a history key that is not a
// history (or a Consul that says so) never stops the balancer.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { DashboardSnapshot } from '../../balancer/observe/dashboard-model.ts';
import { historyKey, parseHistory } from '../../balancer/observe/history-doc.ts';
import { waitFor } from '../../lab/processes.ts';
import { startAlertReceiver } from '../support/alert-receiver.ts';
import { launchChromium } from '../support/browser.ts';
import { inRotation, testStack } from '../support/stack.ts';

const receiver = await startAlertReceiver();
const alerts = receiver.alerts;

const stack = testStack('history', 38_000, {
  balancerArgs: ['--alert-webhook', receiver.url],
});
before(async () => { await stack.start(); }, { timeout: 60_000 });
after(async () => {
  await stack.stop();
  receiver.close();
});

const KEY = historyKey('web');

async function snapshot(): Promise<DashboardSnapshot> {
  const response = await fetch(`http://127.0.0.1:${stack.ports.admin}/_sempre/dashboard`, { signal: AbortSignal.timeout(2000) });
  return (await response.json()) as DashboardSnapshot;
}

/** The history as Consul holds it now, or undefined. */
async function stored(): Promise<ReturnType<typeof parseHistory> | undefined> {
  const response = await fetch(`${stack.consulUrl}/v1/kv/${KEY}?raw`, { signal: AbortSignal.timeout(2000) });
  return response.status === 404 ? undefined : parseHistory(await response.text());
}

const summaryOf = (s: DashboardSnapshot, id: string) => s.instances.find((i) => i.id === id)?.incidents;
const alertList = () => alerts.map((a) => `${a.event} ${a.instance}`);

test('an incident and the event log survive a balancer restart; the incident goes on without a second alert', async () => {
  const killedAt = Date.now();
  stack.app('app1').signal('SIGKILL');
  await waitFor('the "left" alert for app1', () => alertList().includes('instance.left app1') || undefined, 20_000);
  const before = await waitFor('app1\'s open incident on the dashboard', async () => {
    const s = await snapshot();
    return summaryOf(s, 'app1')?.downSince ? s : undefined;
  }, 10_000);
  // Written within a second of the change (the shutdown below would write it too).
  await waitFor('the open incident in Consul', async () => {
    const doc = await stored();
    return doc && 'doc' in doc && doc.doc.incidents.app1?.some((r) => r.until === null) ? true : undefined;
  }, 10_000);

  await stack.balancer!.stop();
  await stack.startBalancer(undefined, 1); // app1 is still down: only app2 is listed
  const restored = await waitFor('the history back on the dashboard', async () => {
    const s = await snapshot();
    return s.events.some((e) => e.history === 'before-restart') && s.events.some((e) => e.kind === 'check-critical' && e.instance === 'app1' && !e.history) ? s : undefined;
  }, 10_000);

  const ids = new Map(restored.events.map((e) => [e.id, e]));
  for (const event of before.events) {
    const again = ids.get(event.id);
    assert.ok(again, `event ${event.kind} ${event.instance ?? ''} at ${event.at} is still shown`);
    assert.equal(again.history, 'before-restart');
    assert.deepEqual([again.at, again.kind, again.instance, again.detail], [event.at, event.kind, event.instance, event.detail]);
  }
  const incident = summaryOf(restored, 'app1')!;
  assert.equal(incident.count, 1, 'the same incident, not a second one');
  assert.equal(incident.downSince, summaryOf(before, 'app1')!.downSince, 'still open, from when app1 was killed');
  for (const cause of summaryOf(before, 'app1')!.lastCauses) assert.ok(incident.lastCauses.some((c) => c.at === cause.at && c.cause === cause.cause), `cause ${cause.cause} kept`);
  assert.equal(restored.instances.find((i) => i.id === 'app1')?.state, 'critical');

  // On the page: the restored events as before, with a discreet mark; the new process's without.
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ locale: 'en-US' });
    await page.goto(stack.dashboardUrl);
    const marked = page.locator('#events li[data-history="before-restart"] .history').first();
    await marked.waitFor({ timeout: 10_000 });
    assert.equal(await marked.textContent(), 'before restart');
    assert.equal(await page.locator('#events li:not([data-history]) .history').count(), 0, "the new process's events carry no mark");
  } finally {
    await browser.close();
  }

  // Alerts go out in order: a second "left" sent at the restart would reach the receiver before this "returned".
  await stack.startApp('app1');
  await stack.waitForStatus('app1 back in rotation', (s) => inRotation(s, 'app1'), 20_000);
  const returned = await waitFor('the "returned" alert for app1', () => alerts.find((a) => a.event === 'instance.returned' && a.instance === 'app1'), 20_000);
  assert.deepEqual(alertList(), ['instance.left app1', 'instance.returned app1'], 'one "left" before the restart, one "returned" after it');
  assert.ok(returned.downForMs !== null && returned.downForMs >= Date.now() - killedAt - 60_000 && Date.parse(returned.at) - returned.downForMs <= killedAt + 5000,
    `down for ${returned.downForMs} ms, counted from the kill before the restart`);
  const closed = await waitFor('app1\'s incident closed on the dashboard', async () => {
    const s = await snapshot();
    return summaryOf(s, 'app1')?.downSince === null ? s : undefined;
  }, 5000);
  assert.equal(summaryOf(closed, 'app1')!.count, 1);
});

test('a history key that is not a history is replaced, and the balancer serves meanwhile', async () => {
  await stack.balancer!.stop();
  const put = await fetch(`${stack.consulUrl}/v1/kv/${KEY}`, { method: 'PUT', body: '{"version":1,"events":"garbage' });
  assert.equal(put.status, 200);
  await stack.startBalancer();
  const answer = await fetch(stack.url, { signal: AbortSignal.timeout(5000) });
  assert.equal(answer.status, 200, 'serving');
  await answer.arrayBuffer();
  const doc = await waitFor('a readable history written again', async () => {
    const value = await stored();
    return value && 'doc' in value && value.doc.events.length > 0 ? value.doc : undefined;
  }, 10_000);
  assert.ok(doc.events.some((e) => e.kind === 'registered'), 'the new process\'s own events');
  await waitFor('the warning in the balancer\'s log', () => /the history in Consul is not readable: it will be replaced/.test(readFileSync(stack.balancer!.logFile, 'utf8')) || undefined, 10_000);
  assert.deepEqual(alertList(), ['instance.left app1', 'instance.returned app1'], 'no alert from the restart');
});
