// Issue 11: an ordinary web app behind sempre, built on the libraries people
// actually use (Express + express-session's memory store, socket.io with its
// own browser client in Chromium, `ws`), two instances with their agents
// registered as sticky, a real Consul, the real balancer. Sessions, WebSockets,
// slow pages, uploads and streams must survive being balanced, and a crash
// or maintenance of one instance.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser } from 'playwright-core';
import WebSocket from 'ws';
import { startLoad, type RunningLoad } from '../../drill/load-generator.ts';
import { describeSummary, summarize } from '../../drill/summary.ts';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { waitFor } from '../../lab/processes.ts';
import { recordFigure, testStack, waitForRequests } from '../support/stack.ts';
import { launchChromium } from '../support/browser.ts';
import { closeTunnels, echo, openTunnels as openTunnelsTo, openTunnel as openTunnelTo, type Tunnel } from '../support/websockets.ts';

const DRAIN_MS = 3000;
const stack = testStack('real-apps', 30_000, {
  lab: false,
  appScript: join(PROJECT_ROOT, 'test/apps/real-app.ts'),
  agentArgs: ['--sticky', 'true'],
  balancerArgs: ['--tunnel-drain', `${DRAIN_MS / 1000}s`],
});
const COOKIE = 'sempre_sticky';
const INSTANCES = ['app1', 'app2'];
const other = (id: string) => (id === 'app1' ? 'app2' : 'app1');

// Everything a test opens, so after() can close it even when the test failed.
const sockets = new Set<WebSocket>();
const loads = new Set<RunningLoad>();
let browser: Browser | undefined;

before(async () => { await stack.start(); }, { timeout: 60_000 });
after(async () => {
  for (const ws of sockets) ws.terminate();
  await Promise.all([...loads].map((load) => load.stop()));
  await browser?.close();
  await stack.stop();
});

// ---------------------------------------------------------------- helpers

/** An HTTP client with its own cookie jar, as one browser would be. */
class Client {
  readonly jar = new Map<string, string>();

  get cookie(): string {
    return [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  async request(path: string, init: { method?: string; json?: unknown; timeoutMs?: number } = {}) {
    const headers: Record<string, string> = {};
    if (this.jar.size) headers.cookie = this.cookie;
    if (init.json !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(new URL(path, stack.url), {
      method: init.method ?? 'GET', headers, body: init.json === undefined ? undefined : JSON.stringify(init.json), redirect: 'manual',
      signal: AbortSignal.timeout(init.timeoutMs ?? 5000),
    });
    const setCookies = response.headers.getSetCookie();
    for (const line of setCookies) {
      const pair = line.split(';')[0] ?? '';
      const eq = pair.indexOf('=');
      this.jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    const text = await response.text();
    return { status: response.status, servedBy: response.headers.get('x-served-by'), setCookies, text, json: () => JSON.parse(text) as Record<string, unknown> };
  }
}

function stickyCookieOf(setCookies: readonly string[]): string | undefined {
  return setCookies.find((line) => line.startsWith(`${COOKIE}=`));
}

/** A fresh client (no cookies) logged in as `user`; returns it with the instance it landed on. */
async function loggedIn(user: string): Promise<{ client: Client; instance: string }> {
  const client = new Client();
  const login = await client.request('/login', { method: 'POST', json: { user } });
  assert.equal(login.status, 200, login.text);
  return { client, instance: String(login.json().instance) };
}

/** Fresh logged-in clients until `count` of them are on `instance` (bounded). */
async function clientsOn(instance: string, count: number): Promise<Client[]> {
  const found: Client[] = [];
  for (let i = 0; i < count * 10 && found.length < count; i += 1) {
    const { client, instance: on } = await loggedIn(`user${i}`);
    if (on === instance) found.push(client);
  }
  assert.equal(found.length, count, `only ${found.length} of ${count * 10} fresh clients landed on ${instance}`);
  return found;
}

const wsUrl = () => `ws://127.0.0.1:${stack.ports.balancer}/ws`;
const openTunnel = (options: { cookie?: string; localAddress?: string } = {}) => openTunnelTo(wsUrl(), sockets, options);
const openTunnels = (count: number, options: { batch?: number; perAddress?: number; addressPrefix?: string } = {}) => openTunnelsTo(wsUrl(), sockets, count, options);

/** The status fields of issue 11 (beyond lab/local-stack.ts's BalancerStatus). */
interface TunnelStatus {
  tunnels?: number;
  instances: Array<{ id: string; state: string; requests: number; ejections: number; tunnels?: number }>;
}

async function tunnelStatus(): Promise<TunnelStatus> {
  return (await stack.status()) as unknown as TunnelStatus;
}

const tunnelsOf = (status: TunnelStatus, id: string) => status.instances.find((i) => i.id === id)?.tunnels ?? 0;
const serving = (status: { instances: Array<{ id: string; state: string }> }, id: string) => status.instances.some((i) => i.id === id && (i.state === 'healthy' || i.state === 'slow-start'));

/** Sum of a Prometheus counter or gauge over the series whose labels include `labels`. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${stack.ports.admin}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+)(?:\{(.*)\})? ([0-9.eE+-]+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const seriesLabels = match[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => seriesLabels.includes(`${k}="${v}"`))) sum += Number(match[3]);
  }
  return sum;
}

/** Brings a killed instance back and waits until the balancer gives it its full share again. */
async function revive(id: string): Promise<void> {
  const app = stack.app(id);
  if (app.running()) return;
  await app.exited;
  await stack.startApp(id);
  await stack.waitForStatus(`${id} back at full weight`, (s) => s.instances.some((i) => i.id === id && i.state === 'healthy'), 20_000);
}

async function bothHealthy(): Promise<void> {
  await stack.waitForStatus('both instances healthy', (s) => INSTANCES.every((id) => s.instances.some((i) => i.id === id && i.state === 'healthy')), 20_000);
}

function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

// ------------------------------------------------------------------ tests

test('keeps a logged-in session on its instance for 50 requests (sticky cookie), and spreads separate clients over both instances', { timeout: 30_000 }, async () => {
  const client = new Client();
  const login = await client.request('/login', { method: 'POST', json: { user: 'ana' } });
  assert.equal(login.status, 200, login.text);
  const instance = String(login.json().instance);
  assert.equal(login.servedBy, instance);
  const sticky = stickyCookieOf(login.setCookies) ?? '';
  assert.ok(client.jar.has(COOKIE), `the login response set the ${COOKIE} cookie (jar: ${[...client.jar.keys()].join(', ')})`);
  assert.ok(client.jar.has('connect.sid'), 'the app set its own session cookie');
  assert.match(sticky, /;\s*HttpOnly/i);
  assert.match(sticky, /;\s*SameSite=Lax/i);
  assert.match(sticky, /;\s*Path=\//i);
  assert.doesNotMatch(sticky, /Max-Age|Expires/i, 'a session cookie');
  assert.doesNotMatch(decodeURIComponent(sticky), /127\.0\.0\.|:30020/, 'the cookie never carries an address');

  for (let n = 1; n <= 50; n += 1) {
    const me = await client.request('/me');
    assert.equal(me.status, 200);
    assert.deepEqual(me.json(), { instance, user: 'ana', views: n }, `request ${n} (x-served-by ${me.servedBy})`);
    assert.equal(me.servedBy, instance);
  }

  const seen = new Map<string, Client>();
  for (let i = 0; i < 20 && seen.size < 2; i += 1) {
    const fresh = new Client();
    const first = await fresh.request('/me');
    if (first.servedBy && !seen.has(first.servedBy)) seen.set(first.servedBy, fresh);
  }
  assert.deepEqual([...seen.keys()].sort(), INSTANCES, 'fresh clients land on both instances');
  for (const [id, fresh] of seen) {
    for (let n = 2; n <= 10; n += 1) {
      const me = await fresh.request('/me');
      assert.equal(me.servedBy, id);
      assert.equal(me.json().views, n);
    }
  }
});

test('carries a WebSocket through the balancer: echo both ways, sticky cookie honoured, counted in status and metrics', { timeout: 30_000 }, async () => {
  const tunnel = await openTunnel();
  assert.ok(INSTANCES.includes(tunnel.instance));
  await echo(tunnel, 'hello through sempre');
  const binary = randomBytes(64 * 1024);
  const back = await new Promise<Buffer>((resolve) => {
    tunnel.ws.once('message', (data) => resolve(data as Buffer));
    tunnel.ws.send(binary);
  });
  assert.ok(back.equals(binary), 'a 64 KiB binary frame comes back unchanged');

  // A client kept on an instance by its cookie gets its WebSocket there too.
  for (const id of INSTANCES) {
    const [client] = await clientsOn(id, 1);
    const kept = await openTunnel({ cookie: client!.cookie });
    assert.equal(kept.instance, id, `the WebSocket of a client sticky to ${id} goes to ${id}`);
    await closeTunnels([kept]);
  }

  const status = await stack.waitForStatus('one tunnel open in status', (s) => (s as unknown as TunnelStatus).tunnels === 1) as unknown as TunnelStatus;
  assert.equal(tunnelsOf(status, tunnel.instance), 1, JSON.stringify(status.instances));
  assert.equal(tunnelsOf(status, other(tunnel.instance)), 0);
  assert.equal(await metric('sempre_tunnels_open', { instance: tunnel.instance }), 1);
  assert.ok(await metric('sempre_tunnels_total', { outcome: 'opened' }) >= 3);

  await closeTunnels([tunnel]);
  await stack.waitForStatus('no tunnel open after the client closed it', (s) => (s as unknown as TunnelStatus).tunnels === 0, 5000);
});

// Measured early, before any load test has grown the balancer's heap (whose
// free space would then absorb the tunnels and hide their cost).
test('figure: the balancer\'s memory for 1,000 open WebSockets', { timeout: 60_000 }, async () => {
  await bothHealthy();
  // The worker serving them (the main process only holds the sockets).
  const [pid] = stack.balancerWorkerPids();
  assert.ok(pid, 'the balancer\'s worker');
  await stack.waitForStatus('no tunnel open', (s) => (s as unknown as TunnelStatus).tunnels === 0, 10_000);
  const rssBefore = rssKiB(pid);
  const heapBefore = await metric('sempre_balancer_nodejs_heap_size_used_bytes');
  const tunnels = await openTunnels(1000, { batch: 50, perAddress: 100, addressPrefix: '127.0.6' });
  try {
    await stack.waitForStatus('1,000 tunnels in status', (s) => (s as unknown as TunnelStatus).tunnels === 1000, 10_000);
    await Promise.all(tunnels.map((t, i) => echo(t, `m${i}`, 5000)));
    const rssAfter = rssKiB(pid);
    const heapAfter = await metric('sempre_balancer_nodejs_heap_size_used_bytes');
    recordFigure('balancer RSS growth for 1,000 open WebSockets', (rssAfter - rssBefore) / 1024, 'MiB');
    recordFigure('balancer JS heap used growth for 1,000 open WebSockets', (heapAfter - heapBefore) / 1024 / 1024, 'MiB');
    recordFigure('balancer RSS with 1,000 open WebSockets', rssAfter / 1024, 'MiB');
  } finally {
    await closeTunnels(tunnels);
  }
  await stack.waitForStatus('no tunnel open after closing them', (s) => (s as unknown as TunnelStatus).tunnels === 0, 10_000);
});

test("passes a gzip'd, chunked script byte for byte (socket.io's own client, 150 KB)", { timeout: 30_000 }, async () => {
  const digest = async (url: string) => {
    const response = await fetch(url, { headers: { 'accept-encoding': 'gzip' } });
    const bytes = Buffer.from(await response.arrayBuffer());
    return { status: response.status, length: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  };
  const direct = await digest(`http://${stack.addressOf('app1')}:${stack.ports.app}/socket.io/socket.io.js`);
  assert.equal(direct.status, 200);
  assert.ok(direct.length > 100_000, `the script is large enough to span many reads (${direct.length} bytes)`);
  for (let i = 0; i < 4; i += 1) assert.deepEqual(await digest(new URL('/socket.io/socket.io.js', stack.url).href), direct);
});

test('passes an 8 MiB upload and an SSE feed that runs more than 5 s', { timeout: 30_000 }, async () => {
  const body = randomBytes(8 * 1024 * 1024);
  const upload = await fetch(new URL('/upload', stack.url), { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' }, signal: AbortSignal.timeout(15_000) });
  const uploaded = await upload.json() as { bytes: number; sha256: string; instance: string };
  assert.equal(upload.status, 200);
  assert.equal(uploaded.bytes, body.length);
  assert.equal(uploaded.sha256, createHash('sha256').update(body).digest('hex'));

  const abort = new AbortController();
  const started = Date.now();
  const response = await fetch(new URL('/events', stack.url), { signal: abort.signal });
  try {
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
    const events: Array<{ instance: string; n: number }> = [];
    let buffered = '';
    const decoder = new TextDecoder();
    const reader = response.body!.getReader();
    const deadline = started + 10_000;
    // One event at once, then one a second: 7 events span 6 s.
    while (events.length < 7) {
      const chunk = await Promise.race([reader.read(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`SSE feed stalled after ${events.length} events`)), Math.max(0, deadline - Date.now())))]);
      if (chunk.done) throw new Error(`the SSE feed ended after ${events.length} events and ${Date.now() - started} ms`);
      buffered += decoder.decode(chunk.value, { stream: true });
      let end;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const frame = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = frame.split('\n').find((line) => line.startsWith('data: '));
        if (data) events.push(JSON.parse(data.slice(6)) as { instance: string; n: number });
      }
    }
    assert.ok(Date.now() - started > 5000, 'the feed ran more than 5 s');
    assert.deepEqual(events.map((e) => e.n), [0, 1, 2, 3, 4, 5, 6], 'no event lost or repeated');
    assert.equal(new Set(events.map((e) => e.instance)).size, 1, 'one instance fed the whole stream');
    assert.equal(response.headers.get('x-served-by'), events[0]!.instance);
  } finally {
    abort.abort();
  }
});

test('waits for pages of 8 s and 30 s on a healthy instance: 200 after one attempt each, nobody ejected', { timeout: 60_000 }, async () => {
  const attemptsBefore = await metric('sempre_upstream_attempts_total');
  const ejectionsBefore = await metric('sempre_ejections_total');
  const statusBefore = await stack.status();
  const slow = async (ms: number) => {
    const started = Date.now();
    const response = await fetch(new URL(`/slow?ms=${ms}`, stack.url), { signal: AbortSignal.timeout(ms + 15_000) });
    return { ms, status: response.status, text: await response.text(), servedBy: response.headers.get('x-served-by'), tookMs: Date.now() - started };
  };
  const pages = await Promise.all([slow(8000), slow(30_000)]);
  for (const page of pages) {
    assert.equal(page.status, 200, `${page.ms} ms page: HTTP ${page.status} after ${page.tookMs} ms: ${page.text.slice(0, 300)}`);
    assert.ok(page.tookMs < page.ms + 1500, `${page.ms} ms page answered in ${page.tookMs} ms`);
  }
  assert.equal(await metric('sempre_upstream_attempts_total') - attemptsBefore, 2, 'one attempt per page (no replay on the other instance)');
  assert.equal(await metric('sempre_ejections_total') - ejectionsBefore, 0, 'no ejection counted');
  const statusAfter = await stack.status();
  for (const id of INSTANCES) {
    const before = statusBefore.instances.find((i) => i.id === id);
    const now = statusAfter.instances.find((i) => i.id === id);
    assert.equal(now?.ejections, before?.ejections, `${id} was not ejected`);
    assert.equal(now?.state, 'healthy', `${id} is healthy`);
    const expected = pages.filter((p) => p.servedBy === id).length;
    assert.equal((now?.requests ?? 0) - (before?.requests ?? 0), expected, `${id} got exactly the pages it served`);
  }
});

test('at 500 GET/s from sticky clients, kill -9 of their instance: zero failed GETs, then the other instance serves them with a new cookie', { timeout: 60_000 }, async () => {
  await bothHealthy();
  const victim = 'app1';
  const clients = await clientsOn(victim, 4);
  const cookies = clients.map((c) => c.cookie);
  const running = cookies.map((cookie) => startLoad({ url: stack.url, path: '/me', rate: 125, durationMs: 60_000, connections: 48, headers: { cookie } }));
  for (const load of running) loads.add(load);
  const all = () => running.flatMap((load) => load.records.map((r) => ({ ...r, at: load.startedAt + r.intendedMs })));
  await waitFor('1,000 sticky requests', () => all().length >= 1000, 15_000);
  const beforeKill = all();
  assert.deepEqual([...new Set(beforeKill.map((r) => r.servedBy))], [victim], 'sticky clients stay on their instance under load');

  const killedAt = Date.now();
  stack.app(victim).signal('SIGKILL');
  await waitFor('every sticky client served by the other instance', () => running.every((load) => load.records.some((r) => r.servedBy === other(victim) && load.startedAt + r.intendedMs > killedAt)), 10_000);
  for (const load of running) await waitForRequests(load, load.records.length + 125);
  const records = (await Promise.all(running.map((load) => load.stop()))).flat();
  for (const load of running) loads.delete(load);
  const summary = summarize(records);
  assert.equal(summary.failed, 0, describeSummary(summary));
  const lastSecond = all().filter((r) => r.at > Date.now() - 1000);
  assert.ok(lastSecond.length > 0 && lastSecond.every((r) => r.servedBy === other(victim)), 'after the kill only the live instance serves them');
  recordFigure('sticky clients, kill -9 of their instance: max latency', summary.latencyMs.max, 'ms');

  // A client with its old cookie is rebound to the live instance with a new
  // cookie; its in-memory session stayed with the dead instance (documented).
  const client = clients[0]!;
  const oldSticky = client.jar.get(COOKIE);
  const rebound = await client.request('/me');
  assert.equal(rebound.servedBy, other(victim));
  const newSticky = stickyCookieOf(rebound.setCookies);
  assert.ok(newSticky, 'the response rebinding the client sets a new sticky cookie');
  assert.notEqual(client.jar.get(COOKIE), oldSticky);
  assert.equal(rebound.json().user, null, 'the memory-store session was on the killed instance');
  const again = await client.request('/me');
  assert.equal(again.servedBy, other(victim));
  assert.equal(stickyCookieOf(again.setCookies), undefined, 'no new cookie once rebound');

  await revive(victim);
});

test('with 200 WebSockets open and 500 GET/s, kill -9 of one instance closes its tunnels within a second, leaves the others echoing, and reconnections land on the live instance', { timeout: 90_000 }, async () => {
  await bothHealthy();
  const victim = 'app1';
  const tunnels = await openTunnels(200, { perAddress: 100 });
  const onVictim = tunnels.filter((t) => t.instance === victim);
  const onOther = tunnels.filter((t) => t.instance === other(victim));
  assert.ok(onVictim.length >= 20 && onOther.length >= 20, `tunnels spread over both instances (${onVictim.length} / ${onOther.length})`);
  const status = await stack.waitForStatus('200 tunnels in status', (s) => (s as unknown as TunnelStatus).tunnels === 200) as unknown as TunnelStatus;
  assert.equal(tunnelsOf(status, victim), onVictim.length);
  assert.equal(tunnelsOf(status, other(victim)), onOther.length);

  const load = startLoad({ url: stack.url, rate: 500, durationMs: 60_000, connections: 32 });
  loads.add(load);
  try {
    await waitForRequests(load, 500);
    const killedAt = Date.now();
    stack.app(victim).signal('SIGKILL');
    await waitFor(`the ${onVictim.length} tunnels of ${victim} to close`, () => onVictim.every((t) => t.closedAt !== undefined), 5000);
    const slowest = Math.max(...onVictim.map((t) => t.closedAt! - killedAt));
    recordFigure(`kill -9 → last of ${onVictim.length} tunnels closed`, slowest, 'ms');
    assert.ok(slowest < 1000, `the killed instance's tunnels closed within a second (slowest ${slowest} ms)`);

    assert.ok(onOther.every((t) => t.ws.readyState === WebSocket.OPEN), 'the live instance\'s tunnels are untouched');
    await Promise.all(onOther.map((t, i) => echo(t, `still here ${i}`)));

    // The clients that lost theirs reconnect at once, as a browser would.
    const reconnected = await openTunnels(onVictim.length, { addressPrefix: '127.0.3', perAddress: 100 });
    assert.deepEqual([...new Set(reconnected.map((t) => t.instance))], [other(victim)], 'every reconnection lands on the live instance');
    await Promise.all(reconnected.map((t, i) => echo(t, `reconnected ${i}`)));
    const after = await stack.waitForStatus('tunnels counted on the live instance only', (s) => (s as unknown as TunnelStatus).tunnels === 200) as unknown as TunnelStatus;
    assert.equal(tunnelsOf(after, victim), 0);
    assert.equal(tunnelsOf(after, other(victim)), 200);
    assert.equal(await metric('sempre_tunnels_open', { instance: victim }), 0);

    await waitForRequests(load, load.records.length + 250);
    const summary = summarize(await load.stop());
    assert.equal(summary.failed, 0, describeSummary(summary));
    await closeTunnels([...onOther, ...reconnected]);
  } finally {
    loads.delete(load);
    await load.stop();
    await closeTunnels(tunnels);
  }
  await revive(victim);
});

test('socket.io in Chromium upgrades to WebSocket through the balancer, and after kill -9 of its instance reconnects to the other and keeps exchanging messages', { timeout: 60_000 }, async () => {
  await bothHealthy();
  browser = await launchChromium();
  const page = await browser.newPage();
  type Chat = { connected: boolean; transport: string | null; instance: string | null; connects: number; messages: Array<{ instance: string; at?: number }>; disconnects: Array<{ at: number; reason: string }> };
  const chat = () => page.evaluate(() => (window as unknown as { chat: Chat }).chat);
  // A wait on the page that, when it times out, says what the page saw.
  const waitOnPage = async (what: string, predicate: (arg: string) => unknown, arg: string, timeout: number) => {
    try {
      await page.waitForFunction(predicate, arg, { timeout });
    } catch (error) {
      throw new Error(`${what}: not within ${timeout} ms; the page saw ${JSON.stringify(await chat().catch(() => null))} (${(error as Error).message.split('\n')[0]})`);
    }
  };
  const send = (text: string) => page.evaluate((data) => (window as unknown as { echo: (d: string) => Promise<{ instance: string; data: string } | null> }).echo(data), text);
  try {
    await page.goto(new URL('/chat', stack.url).href);
    await waitOnPage('socket.io connected and upgraded to websocket', () => {
      const c = (window as unknown as { chat?: Chat }).chat;
      return c?.connected && c.instance && c.transport === 'websocket';
    }, '', 10_000);
    const first = await chat();
    const victim = first.instance!;
    for (let i = 0; i < 5; i += 1) assert.deepEqual(await send(`before ${i}`), { instance: victim, data: `before ${i}` });
    const tunnels = await tunnelStatus();
    assert.ok(tunnelsOf(tunnels, victim) >= 1, `the socket.io WebSocket is a tunnel to ${victim}`);

    const killedAt = Date.now();
    stack.app(victim).signal('SIGKILL');
    await waitOnPage(`socket.io reconnected to ${other(victim)}`, (expected) => {
      const c = (window as unknown as { chat: Chat }).chat;
      return c.connected && c.instance === expected && c.connects === 2;
    }, other(victim), 15_000);
    const after = await chat();
    const reconnectedAt = after.messages.at(-1)?.at ?? Date.now(); // the page's clock: the same machine's
    recordFigure('socket.io in Chromium: kill -9 of its instance → reconnected to the other (socket.io default backoff 0.5–1.5 s)', reconnectedAt - killedAt, 'ms');
    assert.equal(after.disconnects.length, 1, JSON.stringify(after.disconnects));
    for (let i = 0; i < 5; i += 1) assert.deepEqual(await send(`after ${i}`), { instance: other(victim), data: `after ${i}` });
    await waitOnPage('socket.io upgraded to websocket again', () => (window as unknown as { chat: Chat }).chat.transport === 'websocket', '', 10_000);
    assert.deepEqual(await send('upgraded again'), { instance: other(victim), data: 'upgraded again' });
  } finally {
    await page.close();
  }
  for (const id of INSTANCES) await revive(id);
});

test('maintenance on an instance with open WebSockets: no new ones reach it, the open ones go on until the drain deadline, then close', { timeout: 60_000 }, async () => {
  await bothHealthy();
  const target = 'app1';
  const tunnels = await openTunnels(20, { addressPrefix: '127.0.4' });
  const draining = tunnels.filter((t) => t.instance === target);
  assert.ok(draining.length >= 4, `some tunnels on ${target} (${draining.length} of 20)`);
  const [stickyClient] = await clientsOn(target, 1);
  const drainClosedBefore = await metric('sempre_tunnels_total', { outcome: 'closed-drain' });

  const maintenance = (enable: boolean) => fetch(`http://127.0.0.1:${stack.ports.admin}/_sempre/instances/${target}/maintenance`, {
    method: 'POST', headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ enable, reason: 'issue 11 drain test' }),
  });
  const askedAt = Date.now();
  assert.equal((await maintenance(true)).status, 200);
  try {
    await stack.waitForStatus(`${target} out of rotation`, (s) => !serving(s, target), 10_000);
    const seenAt = Date.now();
    assert.ok(draining.every((t) => t.closedAt === undefined), 'open tunnels are not cut when maintenance starts');

    // New WebSockets, even from a client sticky to it, go elsewhere.
    const fresh = await openTunnels(10, { addressPrefix: '127.0.5' });
    assert.deepEqual([...new Set(fresh.map((t) => t.instance))], [other(target)], 'no new WebSocket reaches the instance in maintenance');
    const sticky = await openTunnel({ cookie: stickyClient!.cookie });
    assert.equal(sticky.instance, other(target), 'not even one from a client sticky to it');
    await Promise.all(draining.map((t, i) => echo(t, `draining ${i}`)));

    await Promise.all(draining.map((t) => t.closed));
    const fromAsked = draining.map((t) => t.closedAt! - askedAt);
    const fromSeen = draining.map((t) => t.closedAt! - seenAt);
    recordFigure(`maintenance: tunnels closed after (--tunnel-drain ${DRAIN_MS / 1000}s, from the request)`, `${Math.min(...fromAsked)}–${Math.max(...fromAsked)}`, 'ms');
    assert.ok(Math.min(...fromAsked) >= DRAIN_MS - 100, `not closed before the drain deadline (first after ${Math.min(...fromAsked)} ms)`);
    assert.ok(Math.max(...fromSeen) <= DRAIN_MS + 2000, `closed by the deadline + 2 s (last ${Math.max(...fromSeen)} ms after the balancer showed it out of rotation)`);
    assert.ok(tunnels.filter((t) => t.instance !== target).every((t) => t.ws.readyState === WebSocket.OPEN), 'the other instance\'s tunnels stay open');
    assert.equal(await metric('sempre_tunnels_total', { outcome: 'closed-drain' }) - drainClosedBefore, draining.length);
    await closeTunnels([...tunnels, ...fresh, sticky]);
  } finally {
    await maintenance(false);
    await closeTunnels(tunnels);
  }
  await bothHealthy();
});
