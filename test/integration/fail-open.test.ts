// Issue 24: when the health signal fails everywhere at once (both agents
// frozen or dead), the balancer keeps serving the apps that still answer —
// and never against an operator's maintenance or the app's own word. A real
// Consul, the demo apps and their agents, real signals, 500 GET/s.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startLoad, type RunningLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { waitFor } from '../../lab/processes.ts';
import { startAlertReceiver } from '../support/alert-receiver.ts';
import { launchChromium } from '../support/browser.ts';
import { recordFigure, testStack, waitForRequests } from '../support/stack.ts';

const receiver = await startAlertReceiver();
const alerts = receiver.alerts;

const stack = testStack('fail-open', 35_000, {
  lab: true,
  balancerArgs: ['--alert-webhook', receiver.url],
});
const INSTANCES = ['app1', 'app2'];
const loads = new Set<RunningLoad>();
const frozen = new Set<string>();
let browser: Browser | undefined;

before(async () => { await stack.start(); }, { timeout: 60_000 });
after(async () => {
  for (const id of frozen) stack.agent(id).signal('SIGCONT');
  await Promise.all([...loads].map((load) => load.stop()));
  await browser?.close();
  await stack.stop();
  receiver.close();
});

interface FailOpenStatus { active: boolean; since?: string; served?: Array<{ id: string; reason: string }>; refused?: Array<{ id: string; reason: string }> }
async function failOpen(): Promise<FailOpenStatus> {
  return ((await stack.status()) as unknown as { failOpen: FailOpenStatus }).failOpen;
}

function load(durationMs: number): RunningLoad {
  const running = startLoad({ url: stack.url, rate: 500, durationMs });
  loads.add(running);
  return running;
}

function freezeAgents(ids: readonly string[]): void {
  for (const id of ids) {
    stack.agent(id).signal('SIGSTOP');
    frozen.add(id);
  }
}

function resumeAgents(ids: readonly string[]): void {
  for (const id of ids) {
    stack.agent(id).signal('SIGCONT');
    frozen.delete(id);
  }
}

/** Back to the start: every agent running, both instances passing in Consul and healthy in the balancer. */
async function bothHealthy(): Promise<void> {
  await stack.waitForStatus('both instances healthy and no fail-open', (s) => s.instances.length === 2 && s.instances.every((i) => i.state === 'healthy') && !(s as unknown as { failOpen: FailOpenStatus }).failOpen.active, 20_000);
}

/** Routing tables the balancer published without any instance in them, from its log. */
function emptyTablesSince(fromMs: number): number {
  return readFileSync(stack.balancer!.logFile, 'utf8').split('\n')
    .filter((line) => line.includes('"msg":"routing table updated"'))
    .map((line) => JSON.parse(line) as { time: string; instances: string[] })
    .filter((entry) => Date.parse(entry.time) >= fromMs && entry.instances.length === 0).length;
}

async function setMaintenance(id: string, enable: boolean): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${stack.ports.admin}/_sempre/instances/${id}/maintenance`, {
    method: 'POST', headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ enable, reason: 'fail-open test' }),
  });
  assert.equal(response.status, 200, await response.text());
}

async function setAppFault(id: string, query: string): Promise<void> {
  const response = await fetch(`http://${stack.addressOf(id)}:${stack.ports.app}/_fault?${query}`, { method: 'PUT' });
  assert.equal(response.status, 200);
  await response.arrayBuffer();
}

test('both agents frozen (SIGSTOP) for 15 s at 500 GET/s: zero failed GETs; the status, the dashboard and an alert say the balancer served against Consul\'s list, and when it stopped', { timeout: 120_000 }, async () => {
  const running = load(24_000);
  await waitForRequests(running, 500);
  const frozenAt = Date.now();
  freezeAgents(INSTANCES);
  const active = await waitFor('fail-open serving both instances', async () => {
    const state = await failOpen();
    return state.active && state.served?.length === 2 ? state : undefined;
  }, 15_000);
  const switchedAfter = Date.parse(active.since!) - frozenAt;
  for (const served of active.served!) assert.match(served.reason, /TTL expired/, `${served.id}: the reason names the silent agent`);
  const status = await stack.status();
  assert.deepEqual(status.instances.map((i) => i.state), ['fail-open', 'fail-open']);

  browser = await launchChromium();
  const page = await browser.newPage();
  await page.goto(stack.dashboardUrl);
  const banner = page.locator('#fail-open-banner');
  await banner.waitFor({ state: 'visible', timeout: 10_000 });
  assert.match(await banner.textContent() ?? '', /serving the 2 that answer their health probe \(app1, app2\).*agent is silent/);
  await page.locator('article[data-instance="app1"][data-state="fail-open"]').waitFor({ timeout: 10_000 });
  await page.screenshot({ path: `${stack.options.logDir}/fail-open-banner.png` });

  await waitFor('15 s of frozen agents', () => Date.now() - frozenAt >= 15_000 || undefined, 20_000);
  resumeAgents(INSTANCES);
  const resumedAt = Date.now();
  await waitFor('back to Consul\'s list', async () => !(await failOpen()).active || undefined, 15_000);
  const backAfter = Date.now() - resumedAt;
  await banner.waitFor({ state: 'hidden', timeout: 10_000 });
  await page.locator('#events li[data-kind="fail-open-off"]').waitFor({ timeout: 10_000 });
  await page.close();

  const summary = summarize(await running.done);
  assert.equal(summary.failed, 0, describeSummary(summary));
  assert.equal(emptyTablesSince(frozenAt), 0, 'no routing table without an instance was published: no gap');
  const started = await waitFor('the fail-open.started alert', () => alerts.find((a) => a.event === 'fail-open.started'), 10_000);
  assert.match(started.detail, /Consul lists no passing instance of web; serving the 2 that answer their health probe \(app1, app2\)/);
  await waitFor('the fail-open.ended alert', () => alerts.find((a) => a.event === 'fail-open.ended'), 10_000);
  const metrics = await (await fetch(`http://127.0.0.1:${stack.ports.admin}/metrics`)).text();
  assert.match(metrics, /^sempre_fail_open\{service="web"\} 0$/m);
  recordFigure('both agents frozen 15 s at 500 GET/s: failed GETs / max latency', `${summary.failed} of ${summary.total} / ${Math.round(summary.latencyMs.max)} ms`);
  recordFigure('both agents frozen: SIGSTOP → serving against Consul\'s list (the TTL expiring, 3 s)', switchedAfter, 'ms');
  recordFigure('agents resumed → back to Consul\'s list', backAfter, 'ms');
  await bothHealthy();
});

test('both agents killed at 500 GET/s: zero failed GETs until they are started again', { timeout: 120_000 }, async () => {
  alerts.length = 0;
  const running = load(16_000);
  await waitForRequests(running, 500);
  const killedAt = Date.now();
  for (const id of INSTANCES) stack.agent(id).signal('SIGKILL');
  await waitFor('fail-open serving both instances', async () => {
    const state = await failOpen();
    return state.active && state.served?.length === 2 || undefined;
  }, 15_000);
  await waitFor('6 s of dead agents', () => Date.now() - killedAt >= 6000 || undefined, 10_000);
  for (const id of INSTANCES) await stack.startAgent(id);
  await waitFor('back to Consul\'s list', async () => !(await failOpen()).active || undefined, 15_000);
  const summary = summarize(await running.done);
  assert.equal(summary.failed, 0, describeSummary(summary));
  assert.equal(emptyTablesSince(killedAt), 0, 'no gap');
  recordFigure('both agents killed, restarted ~8 s later, at 500 GET/s: failed GETs', `${summary.failed} of ${summary.total}`);
  await bothHealthy();
});

test('one agent frozen while the other is healthy: as before, its instance leaves after the TTL, no fail-open, zero failed', { timeout: 60_000 }, async () => {
  const running = load(8000);
  await waitForRequests(running, 300);
  freezeAgents(['app1']);
  let failedOpen = false;
  await stack.waitForStatus('app1 out of the table', (s) => {
    if ((s as unknown as { failOpen: FailOpenStatus }).failOpen.active) failedOpen = true;
    return s.instances.length === 1 && s.instances[0]!.id === 'app2';
  }, 10_000);
  const summary = summarize(await running.done);
  assert.equal(failedOpen, false, 'never failed open: half of the instances still pass');
  assert.equal((await failOpen()).active, false);
  resumeAgents(['app1']);
  assert.equal(summary.failed, 0, describeSummary(summary));
  await bothHealthy();
});

test("the operator's maintenance stands: both instances in maintenance from the dashboard get 503, even with both agents frozen", { timeout: 90_000 }, async () => {
  // Agents running: they apply the flags, Consul lists both in maintenance.
  try {
    for (const id of INSTANCES) await setMaintenance(id, true);
    await stack.waitForStatus('no instance in the table', (s) => s.instances.length === 0, 10_000);
    const refused = await fetch(stack.url);
    assert.equal(refused.status, 503, 'the operator took both out');
    await refused.arrayBuffer();
    assert.equal((await failOpen()).active, false);
  } finally {
    for (const id of INSTANCES) await setMaintenance(id, false);
  }
  await bothHealthy();

  // Agents frozen, serving against Consul's list: a flag set now cannot be applied by the agents; the balancer reads it itself.
  freezeAgents(INSTANCES);
  try {
    await waitFor('fail-open serving both', async () => (await failOpen()).served?.length === 2 || undefined, 15_000);
    for (const id of INSTANCES) await setMaintenance(id, true);
    const state = await waitFor('both refused for maintenance', async () => {
      const now = await failOpen();
      return now.served?.length === 0 && now.refused?.length === 2 ? now : undefined;
    }, 10_000);
    for (const r of state.refused!) assert.match(r.reason, /maintenance/, r.id);
    const answer = await fetch(stack.url);
    assert.equal(answer.status, 503);
    await answer.arrayBuffer();
  } finally {
    for (const id of INSTANCES) await setMaintenance(id, false);
    resumeAgents(INSTANCES);
  }
  await bothHealthy();
});

test("the app's own word stands: with both agents frozen and both health endpoints answering 503, the balancer answers 503 (the documented default)", { timeout: 90_000 }, async () => {
  freezeAgents(INSTANCES);
  await waitFor('fail-open serving both', async () => (await failOpen()).served?.length === 2 || undefined, 15_000);
  for (const id of INSTANCES) await setAppFault(id, 'mode=unhealthy');
  try {
    const state = await waitFor('both refused: their health probe fails', async () => {
      const now = await failOpen();
      return now.served?.length === 0 && now.refused?.length === 2 ? now : undefined;
    }, 10_000);
    for (const r of state.refused!) assert.match(r.reason, /health probe fails/, r.id);
    const answer = await fetch(stack.url);
    assert.equal(answer.status, 503);
    await answer.arrayBuffer();
  } finally {
    for (const id of INSTANCES) await setAppFault(id, 'mode=none');
    resumeAgents(INSTANCES);
  }
  await bothHealthy();
});
