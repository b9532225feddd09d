// The dashboard of a balancer in front of several services (--routing
// routes), in a real browser (Debian's chromium driven by playwright-core)
// against real Consul, real agents declaring routes and real demo apps: a
// note while no service declares a route, a selector listing every service,
// the choice kept in the URL across a reload, the stream following the chosen
// service, maintenance on the chosen service's instance, the route conflicts,
// and no selector once one service is left.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { passingInstanceIds } from '../../lab/consul-health.ts';
import { startProcess, waitFor, waitUntilUp, type ManagedProcess } from '../../lab/processes.ts';
import { RESULTS_DIR, testStack } from '../support/stack.ts';
import { getWithHost } from '../support/get-with-host.ts';
import { launchChromium } from '../support/browser.ts';

const stack = testStack('routes-dashboard', 32_000, { instances: 0, balancerArgs: ['--routing', 'routes'] });
const NODE = process.execPath;
const LOG_DIR = join(RESULTS_DIR, 'routes-dashboard');
const shots = LOG_DIR;
let browser: Browser;
let page: Page;

interface Running { name: string; app: ManagedProcess; agent: ManagedProcess }
const running = new Map<string, Running>();
let nextAddress = 1;

/** An app and its agent as on a server of their own (127.0.5.N), declaring `routes`. */
async function startInstance(service: string, name: string, routes: string[]): Promise<void> {
  const address = `127.0.5.${nextAddress++}`;
  const port = String(stack.ports.app);
  const app = startProcess({ name, command: NODE, args: [join(PROJECT_ROOT, 'demo-app/server.ts'), '--host', address, '--port', port, '--name', name], logDir: LOG_DIR });
  await waitUntilUp(app, `${name} to answer /healthz`, async () => (await fetch(`http://${address}:${port}/healthz`, { signal: AbortSignal.timeout(1000) })).ok, 15_000);
  const agent = startProcess({
    name: `${name}-agent`, command: NODE, logDir: LOG_DIR,
    args: [join(PROJECT_ROOT, 'agent/main.ts'), '--service', service, '--id', name, '--address', address, '--app-host', address, '--port', port, '--consul', stack.consulUrl, '--log-format', 'json', '--meta', 'version=1.0.0', ...routes.flatMap((r) => ['--route', r])],
  });
  running.set(name, { name, app, agent });
  await waitUntilUp(agent, `${name} passing in Consul`, async () => (await passingInstanceIds(stack.consulUrl, service)).includes(name), 15_000);
}

/** As a deploy does it: the agent drains and deregisters (SIGTERM), then the app stops. */
async function stopInstance(name: string): Promise<void> {
  const instance = running.get(name);
  if (!instance) return;
  await instance.agent.stop(10_000);
  await instance.app.stop();
  running.delete(name);
}

/** Who answers a GET through the balancer with this Host header. */
async function servedBy(host: string, path = '/'): Promise<string> {
  const answer = await getWithHost('127.0.0.1', stack.ports.balancer, host, path);
  return answer.servedBy || `HTTP ${answer.status}`;
}

async function servers(host: string, count: number): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < count; i += 1) seen.add(await servedBy(host));
  return [...seen].sort();
}

const options = () => page.locator('#service-select option').allTextContents();

/** Every message the page's event streams received: the stream's URL, and the service and instances it showed. */
interface Push { url: string; service: string; instances: string[] }
declare global { interface Window { sempreTestPushes: Push[] } }
function recordPushes(): void {
  const Native = window.EventSource;
  window.sempreTestPushes = [];
  window.EventSource = class extends Native {
    constructor(url: string | URL, init?: EventSourceInit) {
      super(url, init);
      this.addEventListener('message', (m) => {
        const snapshot = JSON.parse(m.data as string) as { service: string; instances: Array<{ id: string }> };
        window.sempreTestPushes.push({ url: String(url), service: snapshot.service, instances: snapshot.instances.map((i) => i.id).sort() });
      });
    }
  };
}
const cards = () => page.locator('#instances article').evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.instance ?? '').sort());

/**
 * The page's stream for `service`, from push number `from` on: its first three pushes (the
 * first at once, then one a second) each show that service and its instances, and so do the cards.
 */
async function streamFollows(service: string, instances: string[], from: number): Promise<void> {
  const url = `?service=${service}`;
  await page.waitForFunction(([n, u]) => window.sempreTestPushes.slice(n as number).filter((p) => p.url.endsWith(u as string)).length >= 3, [from, url] as const, { timeout: 10_000 });
  const pushes = (await page.evaluate(() => window.sempreTestPushes)).slice(from).filter((p) => p.url.endsWith(url));
  assert.deepEqual(pushes.map((p) => `${p.service}: ${p.instances.join(' ')}`), pushes.map(() => `${service}: ${instances.join(' ')}`), `the ${service} stream shows ${service} only`);
  assert.deepEqual(await cards(), instances);
}

before(async () => {
  await stack.start();
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, locale: 'en-US' });
  await page.addInitScript(recordPushes);
}, { timeout: 120_000 });

after(async () => {
  await browser?.close();
  await stack.balancer?.stop();
  await Promise.all([...running.values()].map((r) => r.agent.stop()));
  await Promise.all([...running.values()].map((r) => r.app.stop()));
  await stack.stop();
});

test('before any service declares a route it says so, then routes the first ones', async () => {
  await page.goto(stack.dashboardUrl);
  await page.locator('#service-note', { hasText: 'No service declares a route yet' }).waitFor({ timeout: 10_000 });
  assert.ok(await page.locator('#service-picker').isHidden());
  assert.equal(await page.locator('#page-badge').textContent(), 'Page DOWN: no instance serving');
  await page.screenshot({ path: join(shots, '0-no-service-yet.png') });
  await startInstance('shop', 'shop-1', ['shop.example.com/']);
  await startInstance('shop', 'shop-2', ['shop.example.com/']);
  await startInstance('api', 'api-1', ['/api;strip']);
  await waitFor('the balancer to route both services', async () => ((await servedBy('www.example.com', '/api/x')) === 'api-1' && (await servedBy('shop.example.com')).startsWith('shop-')) || undefined, 15_000);
  await page.locator('article[data-instance="shop-1"]').waitFor({ timeout: 10_000 });
  assert.ok(await page.locator('#service-note').isHidden());
});

test('lists both services in a selector, and switching shows the other service\'s instances', async () => {
  await page.goto(`${stack.dashboardUrl}#service=api`);
  await page.locator('#service-picker').waitFor({ state: 'visible', timeout: 10_000 });
  assert.deepEqual(await options(), ['api', 'shop']);
  assert.equal(await page.locator('#service-picker').textContent().then((t) => t?.trim().split(/\s/)[0]), 'Service');
  await page.locator('article[data-instance="api-1"]').waitFor({ timeout: 10_000 });
  assert.deepEqual(await cards(), ['api-1']);
  assert.equal(await page.locator('#service-select').inputValue(), 'api');
  assert.equal(await page.locator('#page-badge').textContent(), 'Page up: 1 of 1 serving');
  assert.ok(await page.locator('#conflicts').isHidden() && await page.locator('#conflict-badge').isHidden(), 'no conflict to show');

  await streamFollows('api', ['api-1'], 0);
  const pushesBefore = await page.evaluate(() => window.sempreTestPushes.length);
  await page.selectOption('#service-select', 'shop');
  await page.locator('article[data-instance="shop-2"]').waitFor({ timeout: 10_000 });
  assert.deepEqual(await cards(), ['shop-1', 'shop-2']);
  assert.equal(await page.locator('#page-badge').textContent(), 'Page up: 2 of 2 serving');
  assert.equal(new URL(page.url()).hash, '#service=shop', 'the choice is in the URL');
  await streamFollows('shop', ['shop-1', 'shop-2'], pushesBefore);
  await page.screenshot({ path: join(shots, '1-selector-shop.png'), fullPage: true });
});

test('a reload keeps the chosen service; the URL hash chooses it, and an unknown one says what is shown instead', async () => {
  await page.reload();
  await page.locator('article[data-instance="shop-1"]').waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#service-select').inputValue(), 'shop');
  assert.deepEqual(await cards(), ['shop-1', 'shop-2']);

  await page.evaluate(() => { location.hash = 'service=api'; });
  await page.locator('article[data-instance="api-1"]').waitFor({ timeout: 10_000 });
  assert.deepEqual(await cards(), ['api-1']);
  assert.equal(await page.locator('#service-select').inputValue(), 'api');

  await page.evaluate(() => { location.hash = 'service=nope'; });
  await page.locator('#service-note', { hasText: 'No service "nope" is routed by this balancer' }).waitFor({ timeout: 10_000 });
  await page.screenshot({ path: join(shots, '1b-unknown-service.png') });
  await page.selectOption('#service-select', 'shop');
  await page.locator('article[data-instance="shop-1"]').waitFor({ timeout: 10_000 });
  assert.ok(await page.locator('#service-note').isHidden());
});

test("maintenance from the page, with the chosen service, takes shop-2 out of shop's rotation, and back", async () => {
  await page.fill('#token', stack.adminToken);
  const posted = page.waitForRequest((r) => r.method() === 'POST' && r.url().includes('/maintenance'));
  await page.locator('[data-instance="shop-2"] button[data-action="maintenance"]').click();
  assert.match((await posted).url(), /\/_sempre\/instances\/shop-2\/maintenance\?service=shop$/);
  await page.locator('article[data-instance="shop-2"][data-state="maintenance"]').waitFor({ timeout: 10_000 });
  await waitFor('shop-2 out of rotation', async () => ((await servers('shop.example.com', 10)).join() === 'shop-1') || undefined, 10_000);
  assert.deepEqual(await servers('shop.example.com', 20), ['shop-1'], 'only shop-1 serves shop.example.com');
  assert.equal(await servedBy('www.example.com', '/api/x'), 'api-1', 'the other service is untouched');
  await page.screenshot({ path: join(shots, '2-shop-2-maintenance.png'), fullPage: true });

  await page.locator('[data-instance="shop-2"] button[data-action="maintenance"]').click();
  await page.locator('article[data-instance="shop-2"][data-state="healthy"], article[data-instance="shop-2"][data-state="slow-start"]').waitFor({ timeout: 10_000 });
  await waitFor('shop-2 back in rotation', async () => ((await servers('shop.example.com', 20)).join() === 'shop-1,shop-2') || undefined, 15_000);
});

test('shows a route conflict between two services, in English and in Portuguese', async () => {
  await startInstance('zshop', 'zshop-1', ['shop.example.com/']);
  const conflict = page.locator('#conflict-list li[data-route="shop.example.com/"][data-winner="shop"]');
  await conflict.waitFor({ timeout: 10_000 });
  assert.match(await conflict.textContent() ?? '', /shop\.example\.com\/\s+served by shop; also declared by zshop/);
  assert.equal(await page.locator('#conflict-badge').textContent(), 'Route conflicts: 1', 'the header says so too');
  await waitFor('zshop in the selector', async () => (await options()).includes('zshop') || undefined, 5000);
  assert.deepEqual(await options(), ['api', 'shop', 'zshop']);
  await page.screenshot({ path: join(shots, '3-conflict.png'), fullPage: true });

  await page.click('#lang');
  await page.locator('#conflicts h2', { hasText: 'Conflitos de rota' }).waitFor();
  assert.match(await page.locator('#service-picker').textContent() ?? '', /Serviço/);
  assert.match(await conflict.textContent() ?? '', /atendida por shop; também declarada por zshop/);
  await page.click('#lang');
});

test('is readable on a phone with the selector: nothing wider than the screen', async () => {
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, locale: 'pt-BR' });
  try {
    await phone.goto(`${stack.dashboardUrl}#service=shop`);
    await phone.locator('article[data-instance="shop-2"]').waitFor({ timeout: 10_000 });
    await phone.locator('#conflicts').waitFor({ state: 'visible', timeout: 10_000 });
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone`);
    assert.equal(await phone.locator('#service-select').inputValue(), 'shop');
    await phone.screenshot({ path: join(shots, '4-phone.png'), fullPage: true });
  } finally {
    await phone.close();
  }
});

test('with one service left there is no selector, and the page shows that service', async () => {
  await stopInstance('zshop-1');
  await stopInstance('api-1');
  await page.locator('#service-picker').waitFor({ state: 'hidden', timeout: 15_000 });
  assert.equal(await page.locator('#service').textContent(), 'shop');
  assert.ok(await page.locator('#conflicts').isHidden(), 'the conflict is gone with zshop');
  assert.ok(await page.locator('#conflict-badge').isHidden());
  assert.deepEqual(await cards(), ['shop-1', 'shop-2']);
});
