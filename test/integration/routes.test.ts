// One balancer (--routing routes) in front of several services, each routed
// by the hosts and paths its agents declare (--route), with a real Consul,
// real demo apps and real agents: every route reaches its service, unknown
// hosts get a 404, a new service is routed under load within a second, a
// rolling deploy that changes routes drops none, a crash drops no request,
// and 50 services cost little.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startLoad, type RunningLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { passingInstanceIds } from '../../lab/consul-health.ts';
import { startProcess, waitFor, waitUntilUp, type ManagedProcess } from '../../lab/processes.ts';
import { RESULTS_DIR, recordFigure, testStack } from '../support/stack.ts';
import { getWithHost } from '../support/get-with-host.ts';

const stack = testStack('routes', 31_000, { instances: 0, balancerArgs: ['--routing', 'routes', '--rate-limit', '0'] });
const NODE = process.execPath;
const LOG_DIR = join(RESULTS_DIR, 'routes');

interface Running { name: string; address: string; app: ManagedProcess; agent: ManagedProcess }
const running = new Map<string, Running>();
let nextAddress = 1;

/** An app and its agent as on a server of their own (127.0.3.N), declaring `routes`. */
async function startInstance(service: string, name: string, routes: string[], version = '1.0.0'): Promise<Running> {
  const address = running.get(name)?.address ?? `127.0.3.${nextAddress++}`;
  const port = String(stack.ports.app);
  const app = startProcess({ name, command: NODE, args: [join(PROJECT_ROOT, 'demo-app/server.ts'), '--host', address, '--port', port, '--name', name, '--version', version], logDir: LOG_DIR });
  await waitUntilUp(app, `${name} to answer /healthz`, async () => (await fetch(`http://${address}:${port}/healthz`, { signal: AbortSignal.timeout(1000) })).ok, 15_000);
  const agent = startProcess({
    name: `${name}-agent`, command: NODE, logDir: LOG_DIR,
    args: [join(PROJECT_ROOT, 'agent/main.ts'), '--service', service, '--id', name, '--address', address, '--app-host', address, '--port', port, '--consul', stack.consulUrl, '--log-format', 'json', '--meta', `version=${version}`, ...routes.flatMap((r) => ['--route', r])],
  });
  await waitUntilUp(agent, `${name} passing in Consul`, async () => (await passingInstanceIds(stack.consulUrl, service)).includes(name), 15_000);
  const instance = { name, address, app, agent };
  running.set(name, instance);
  return instance;
}

/** As a deploy does it: the agent drains and deregisters (SIGTERM), then the app stops. */
async function stopInstance(name: string): Promise<void> {
  const instance = running.get(name);
  if (!instance) return;
  await instance.agent.stop(10_000);
  await instance.app.stop();
}

/** One GET through the balancer with this Host header. */
const get = (host: string, path: string) => getWithHost('127.0.0.1', stack.ports.balancer, host, path);

function loadOn(host: string, path: string, rate: number): RunningLoad {
  return startLoad({ url: `${stack.url.replace(/\/$/, '')}${path}`, rate, durationMs: 120_000, headers: { host } });
}

before(async () => {
  await stack.start();
  await startInstance('shop', 'shop-1', ['shop.example.com/']);
  await startInstance('shop', 'shop-2', ['shop.example.com/']);
  await startInstance('admin', 'admin-1', ['admin.example.com/']);
  await startInstance('api', 'api-1', ['/api;strip']);
  await startInstance('api', 'api-2', ['/api;strip']);
  await waitFor('the balancer to route all three services', async () => (await get('www.example.com', '/api/')).status === 200 && (await get('admin.example.com', '/')).status === 200 && (await get('shop.example.com', '/')).status === 200, 15_000);
}, { timeout: 120_000 });

after(async () => {
  await stack.balancer?.stop();
  await Promise.all([...running.values()].map((r) => r.agent.stop()));
  await Promise.all([...running.values()].map((r) => r.app.stop()));
  await stack.stop();
});

test('every route is answered by its service; an unknown host or path gets a 404 naming it', async () => {
  const served = async (host: string, path: string) => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i += 1) {
      const answer = await get(host, path);
      assert.equal(answer.status, 200, `${host}${path}: ${answer.body}`);
      seen.add(answer.servedBy.replace(/-\d+$/, ''));
    }
    return [...seen];
  };
  assert.deepEqual(await served('shop.example.com', '/'), ['shop']);
  assert.deepEqual(await served('Shop.Example.com:8080', '/cart/1'), ['shop'], 'hosts match without case or port');
  assert.deepEqual(await served('admin.example.com', '/users'), ['admin']);
  assert.deepEqual(await served('www.example.com', '/api/orders'), ['api']);
  assert.deepEqual(await served('admin.example.com', '/api'), ['admin'], 'an exact host comes before a route on any host');
  assert.equal((await get('www.example.com', '/api/orders?x=1')).appPath, '/orders', ';strip takes /api off');
  assert.equal((await get('www.example.com', '/api')).appPath, '/');
  const apix = await get('www.example.com', '/apix');
  assert.equal(apix.status, 404, 'a prefix matches on segment boundaries only');
  const unknown = await get('nope.example.com', '/x');
  assert.equal(unknown.status, 404);
  assert.match(unknown.body, /no route for host "nope\.example\.com" and path "\/x"/);
  const status = await (await fetch(stack.statusUrl)).json() as { routeTable: { routes: Array<{ route: string; service: string; instances: string[] }> } };
  assert.deepEqual(status.routeTable.routes.map((r) => `${r.route} ${r.service} ${r.instances.join('+')}`).sort(), ['/api api api-1+api-2', 'admin.example.com/ admin admin-1', 'shop.example.com/ shop shop-1+shop-2']);
  const metrics = await (await fetch(stack.statusUrl.replace('/_sempre/status', '/metrics'))).text();
  assert.match(metrics, /sempre_requests_total\{service="shop",code="200"\} \d+/);
  assert.match(metrics, /sempre_no_route_total \d+/);
});

test('two services declaring the same route: the first by name serves it, the conflict is in status and the log', async () => {
  await startInstance('zshop', 'zshop-1', ['shop.example.com/']);
  try {
    const status = await stack.waitForStatus('the conflict in status', (s) => ((s as unknown as { routeTable: { conflicts: unknown[] } }).routeTable.conflicts.length > 0), 5000) as unknown as { routeTable: { conflicts: Array<{ route: string; winner: string; losers: string[] }> } };
    assert.deepEqual(status.routeTable.conflicts, [{ route: 'shop.example.com/', winner: 'shop', losers: ['zshop'] }]);
    for (let i = 0; i < 6; i += 1) assert.match((await get('shop.example.com', '/')).servedBy, /^shop-/);
    // The balancer's log is written in batches (at most 250 ms late).
    await waitFor('the conflict in the log', () => readFileSync(stack.balancer!.logFile, 'utf8').includes('two services declare the same route'), 2000);
  } finally {
    await stopInstance('zshop-1');
    running.delete('zshop-1');
  }
  await stack.waitForStatus('the conflict gone', (s) => ((s as unknown as { routeTable: { conflicts: unknown[] } }).routeTable.conflicts.length === 0), 10_000);
});

test('a new service started under load is routed within a second of passing in Consul, with no failed request elsewhere', async () => {
  const loads = [loadOn('shop.example.com', '/', 250), loadOn('www.example.com', '/api/x', 250)];
  await waitFor('load running', () => loads.every((l) => l.records.length > 200) || undefined, 10_000);
  assert.equal((await get('docs.example.com', '/')).status, 404, 'not routed before it exists');
  const started = startInstance('docs', 'docs-1', ['docs.example.com/']);
  // The moment Consul lists it passing, then the first answer through the balancer.
  const passingAt = await waitFor('docs-1 passing', async () => ((await passingInstanceIds(stack.consulUrl, 'docs')).includes('docs-1') ? Date.now() : undefined), 20_000, 10);
  const routedAt = await waitFor('docs.example.com routed', async () => ((await get('docs.example.com', '/')).servedBy === 'docs-1' ? Date.now() : undefined), 5000, 10);
  await started;
  recordFigure('--routing routes: new service passing in Consul → routed', routedAt - passingAt, 'ms');
  assert.ok(routedAt - passingAt <= 1000, `routed ${routedAt - passingAt} ms after passing`);
  for (const load of loads) {
    const summary = summarize(await load.stop());
    assert.equal(summary.failed, 0, describeSummary(summary));
  }
});

test('a rolling deploy that adds a route (/v2) drops no GET on /api, and /v2 is served once the first new instance passes', async () => {
  const load = loadOn('www.example.com', '/api/orders', 500);
  await waitFor('load running', () => load.records.length > 300 || undefined, 10_000);
  assert.equal((await get('www.example.com', '/v2/x')).status, 404);
  // api-1 goes first: drained, restarted at 2.0.0 declaring /api and /v2.
  await stopInstance('api-1');
  await startInstance('api', 'api-1', ['/api;strip', '/v2'], '2.0.0');
  const v2 = await waitFor('/v2 routed', async () => {
    const answer = await get('www.example.com', '/v2/x');
    return answer.status === 200 ? answer : undefined;
  }, 5000, 20);
  assert.equal(v2.servedBy, 'api-1', 'only the instance that declares /v2 serves it');
  assert.equal(v2.appPath, '/v2/x', '/v2 has no ;strip');
  for (let i = 0; i < 10; i += 1) assert.equal((await get('www.example.com', '/v2/x')).servedBy, 'api-1');
  await stopInstance('api-2');
  await startInstance('api', 'api-2', ['/api;strip', '/v2'], '2.0.0');
  // api-2 comes back in slow start (10% of its share at first), so 20 GETs
  // in a row may all go to api-1: ask until both have served /v2.
  const servedV2 = new Set<string>();
  await waitFor('/v2 served by api-1 and api-2', async () => {
    servedV2.add((await get('www.example.com', '/v2/x')).servedBy);
    return servedV2.size === 2 || undefined;
  }, 10_000, 20);
  assert.deepEqual([...servedV2].sort(), ['api-1', 'api-2']);
  const summary = summarize(await load.stop());
  assert.equal(summary.failed, 0, describeSummary(summary));
  assert.ok(summary.total > 2000, `the load ran through the deploy (${summary.total} GETs)`);
});

test("kill -9 of one service's instance at 500 GET/s spread over every route: zero failed GETs", async () => {
  const loads = [loadOn('shop.example.com', '/', 200), loadOn('admin.example.com', '/', 100), loadOn('www.example.com', '/api/x', 200)];
  await waitFor('load running', () => loads.every((l) => l.records.length > 200) || undefined, 10_000);
  running.get('shop-1')!.app.signal('SIGKILL');
  await waitFor('more GETs after the kill', () => loads[0]!.records.length > 1200 || undefined, 15_000);
  for (const load of loads) {
    const summary = summarize(await load.stop());
    assert.equal(summary.failed, 0, describeSummary(summary));
  }
  // Back for the next test.
  await running.get('shop-1')!.agent.stop();
  await startInstance('shop', 'shop-1', ['shop.example.com/']);
});

test('a service with no healthy instance answers 503 on its routes (it does not fall through to another route)', async () => {
  // A catch-all on any host: what admin.example.com's requests would fall through to if its route vanished.
  await startInstance('www', 'www-1', ['/']);
  const admin = running.get('admin-1')!;
  admin.app.signal('SIGKILL');
  try {
    const answer = await waitFor('a 503 from admin.example.com', async () => {
      const response = await get('admin.example.com', '/users');
      return response.status === 503 ? response : undefined;
    }, 15_000);
    assert.match(answer.body, /no healthy instance of service "admin"/);
    for (let i = 0; i < 5; i += 1) assert.equal((await get('admin.example.com', '/')).status, 503, 'not served by www');
    assert.equal((await get('www.example.com', '/')).servedBy, 'www-1');
  } finally {
    await admin.agent.stop();
    await stopInstance('www-1');
    running.delete('www-1');
  }
  await startInstance('admin', 'admin-1', ['admin.example.com/']);
  await waitFor('admin.example.com back', async () => (await get('admin.example.com', '/')).status === 200, 10_000);
});

test('figures: 50 services of 2 instances each, the balancer memory and its time to apply a change', { timeout: 120_000 }, async () => {
  // The worker's memory (the main process only holds the sockets and does not grow with services).
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${stack.balancerWorkerPids()[0]}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
  const before = rss();
  // Registered straight through Consul's agent API (no process each): both instances of a service point at shop-2's app.
  const target = running.get('shop-2')!;
  const register = (service: string, id: string, routes: string) => fetch(`${stack.consulUrl}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({ Name: service, ID: id, Address: target.address, Port: stack.ports.app, Tags: ['sempre-routed'], Meta: { sempre_routes: routes, sempre_health_path: '/healthz' } }),
  }).then((r) => assert.equal(r.status, 200, `register ${id}`));
  const deregister = (id: string) => fetch(`${stack.consulUrl}/v1/agent/service/deregister/${id}`, { method: 'PUT' });
  const names = Array.from({ length: 50 }, (_v, i) => `svc${String(i).padStart(2, '0')}`);
  try {
    const started = Date.now();
    for (const name of names) {
      await register(name, `${name}-a`, `${name}.example.com/`);
      await register(name, `${name}-b`, `${name}.example.com/`);
    }
    await waitFor('all 50 services routed', async () => (await get('svc49.example.com', '/')).status === 200 && (await get('svc00.example.com', '/')).status === 200, 30_000, 50);
    recordFigure('--routing routes: 50 services × 2 instances registered → all routed', Date.now() - started, 'ms');
    recordFigure('--routing routes: balancer RSS before / with 50 more services', `${Math.round(before)} / ${Math.round(rss())}`, 'MiB');
    // One change among them: svc17 gains a route.
    const changedAt = Date.now();
    await register('svc17', 'svc17-c', 'svc17.example.com/,/docs17');
    const appliedAt = await waitFor('/docs17 routed', async () => ((await get('www.example.com', '/docs17')).status === 200 ? Date.now() : undefined), 5000, 10);
    recordFigure('--routing routes: with 50 services, one instance registered → its new route served', appliedAt - changedAt, 'ms');
  } finally {
    for (const name of names) {
      await deregister(`${name}-a`);
      await deregister(`${name}-b`);
    }
    await deregister('svc17-c');
  }
});
