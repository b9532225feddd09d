// The dashboard in a real browser (Debian's chromium driven by
// playwright-core, headless) against the real stack: it shows the instances,
// a crash with its cause and an incident, maintenance from the page (checked
// with requests through the balancer), refuses controls without the token,
// and says so when Consul or its own connection is lost.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser, type Page } from 'playwright-core';
import { startLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { RESULTS_DIR, testStack, waitForRequests } from '../support/stack.ts';
import { launchChromium } from '../support/browser.ts';

const stack = testStack('dashboard', 25_000);
const shots = join(RESULTS_DIR, 'dashboard');
let browser: Browser;
let page: Page;

before(async () => {
  await stack.start();
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, locale: 'en-US' });
  await page.goto(stack.dashboardUrl);
}, { timeout: 90_000 });

after(async () => {
  await browser?.close();
  await stack.stop();
});

const card = (id: string) => page.locator(`[data-instance="${id}"]`).first();

async function servedBy(count: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < count; i += 1) {
    const response = await fetch(stack.url);
    await response.arrayBuffer();
    seen.add(response.headers.get('x-served-by') ?? `HTTP ${response.status}`);
  }
  return seen;
}

test('shows both instances healthy, the page up and Consul reachable', async () => {
  await page.locator('article[data-instance="app1"][data-state="healthy"]').waitFor({ timeout: 10_000 });
  await page.locator('article[data-instance="app2"][data-state="healthy"]').waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#page-badge').textContent(), 'Page up: 2 of 2 serving');
  assert.equal(await page.locator('#consul-badge').textContent(), 'Consul reachable');
  assert.equal(await page.locator('#link-badge').textContent(), 'Live');
  await page.screenshot({ path: join(shots, '1-both-healthy.png'), fullPage: true });
});

test('is readable on a phone: nothing wider than the screen', async () => {
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, locale: 'pt-BR' });
  try {
    await phone.goto(stack.dashboardUrl);
    await phone.locator('article[data-instance="app2"]').waitFor({ timeout: 10_000 });
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone`);
    assert.equal(await phone.locator('h2').first().textContent(), 'Instâncias', 'a Portuguese browser gets Portuguese labels');
    await phone.screenshot({ path: join(shots, '1b-phone.png'), fullPage: true });
  } finally {
    await phone.close();
  }
});

test('after kill -9 of app1 it shows app1 leaving with the cause in the event log and an incident, then healthy again', async () => {
  // Killed while nothing is in flight to it, so the first request that meets
  // it finds the port closed (refused), not a connection cut mid-request (reset).
  // Its agent is paused meanwhile: otherwise a probe of the agent's that falls
  // between the kill and the first request can tell Consul first, and the
  // balancer then never routes to app1 at all (no ejection to show).
  stack.agent('app1').signal('SIGSTOP');
  let running: ReturnType<typeof startLoad>;
  try {
    stack.app('app1').signal('SIGKILL');
    await stack.app('app1').exited;
    running = startLoad({ url: stack.url, rate: 200, durationMs: 60_000 });
    await waitForRequests(running, 200);
    await page.locator('#events li[data-kind="ejected"][data-instance="app1"][data-cause="refused"]').waitFor({ timeout: 10_000 });
  } finally {
    stack.agent('app1').signal('SIGCONT');
  }
  await page.locator('#events li[data-kind="check-critical"][data-instance="app1"]').waitFor({ timeout: 10_000 });
  await page.locator('[data-incidents="app1"][data-count="1"]').waitFor({ timeout: 5000 });
  const incident = await page.locator('[data-incidents="app1"]').textContent();
  assert.match(incident ?? '', /refused/);
  assert.match(incident ?? '', /ECONNREFUSED/, 'the agent\'s check output is among the causes');
  await page.screenshot({ path: join(shots, '2-app1-crashed.png'), fullPage: true });

  await stack.startApp('app1');
  await page.locator('article[data-instance="app1"][data-state="healthy"], article[data-instance="app1"][data-state="slow-start"]').waitFor({ timeout: 15_000 });
  await page.locator('#events li[data-kind="joined"][data-instance="app1"]').first().waitFor();
  const summary = summarize(await running.stop());
  assert.equal(summary.failed, 0, describeSummary(summary));
  await page.screenshot({ path: join(shots, '3-app1-back.png'), fullPage: true });
});

test('without the token the maintenance control is refused and nothing changes', async () => {
  await page.locator('article[data-instance="app1"][data-state="healthy"]').waitFor({ timeout: 10_000 });
  await page.fill('#token', '');
  await card('app1').locator('button[data-action="maintenance"]').click();
  assert.match(await page.locator('#control-message').textContent() ?? '', /Enter the control token/);
  await page.fill('#token', 'not-the-token');
  await card('app1').locator('button[data-action="maintenance"]').click();
  await page.locator('#control-message', { hasText: 'refused the token' }).waitFor({ timeout: 5000 });
  const direct = await fetch(`http://127.0.0.1:${stack.ports.admin}/_sempre/instances/app1/maintenance`, { method: 'POST', body: '{"enable":true}' });
  assert.equal(direct.status, 401);
  assert.deepEqual(await servedBy(20), new Set(['app1', 'app2']), 'both instances still serve');
});

test('maintenance from the page takes app1 out of rotation for every request, and back', async () => {
  await page.fill('#token', stack.adminToken);
  await card('app1').locator('button[data-action="maintenance"]').click();
  await page.locator('article[data-instance="app1"][data-state="maintenance"]').waitFor({ timeout: 10_000 });
  await stack.waitForStatus('app1 out of the balancer table', (s) => !s.instances.some((i) => i.id === 'app1'), 5000);
  assert.deepEqual(await servedBy(30), new Set(['app2']), 'only app2 serves while app1 is in maintenance');
  await page.screenshot({ path: join(shots, '4-app1-maintenance.png'), fullPage: true });

  await card('app1').locator('button[data-action="maintenance"]').click();
  await page.locator('article[data-instance="app1"][data-state="healthy"], article[data-instance="app1"][data-state="slow-start"]').waitFor({ timeout: 10_000 });
  await stack.waitForStatus('app1 back at full weight', (s) => s.instances.find((i) => i.id === 'app1')?.state === 'healthy', 10_000);
  assert.deepEqual(await servedBy(30), new Set(['app1', 'app2']));
  const maintenanceEvents = await page.locator('#events li[data-kind="maintenance-off"][data-instance="app1"]').count();
  assert.ok(maintenanceEvents >= 1);
});

test('shows the labels in Portuguese', async () => {
  await page.click('#lang');
  await page.locator('h2', { hasText: 'Instâncias' }).waitFor();
  assert.match(await page.locator('#page-badge').textContent() ?? '', /^Página no ar: 2 de 2 atendendo$/);
  await page.screenshot({ path: join(shots, '5-portuguese.png'), fullPage: true });
  await page.click('#lang');
});

test('says so when Consul is lost, and when its own connection to the balancer is lost', async () => {
  await stack.consul?.stop();
  await page.locator('#consul-badge', { hasText: 'Consul unreachable' }).waitFor({ timeout: 10_000 });
  await page.locator('#events li[data-kind="consul-unreachable"]').first().waitFor();
  await page.screenshot({ path: join(shots, '6-consul-lost.png'), fullPage: true });
  await stack.balancer?.stop();
  await page.locator('#link-badge', { hasText: 'Connection to the balancer lost' }).waitFor({ timeout: 10_000 });
  await page.screenshot({ path: join(shots, '7-connection-lost.png'), fullPage: true });
});
