import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createHostLookup } from '../../balancer/discovery/host-lookup.ts';
import { answersHealthy } from '../../balancer/health/readmission.ts';
import { HEALTH_PATH_META } from '../../shared/instance.ts';

type Callback = (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void;

/** A resolver that answers only when told to, and counts what it was asked. */
function slowResolver() {
  const asked: Array<{ hostname: string; answer: Callback }> = [];
  return { asked, resolve: (hostname: string, answer: Callback) => { asked.push({ hostname, answer }); } };
}

function lookupOnce(lookup: ReturnType<typeof createHostLookup>, hostname: string): Promise<{ error: NodeJS.ErrnoException | null; addresses: LookupAddress[] }> {
  return new Promise((resolve) => {
    (lookup as unknown as (h: string, o: object, cb: Callback) => void)(hostname, { all: true }, (error, addresses) => resolve({ error, addresses }));
  });
}

test('a name is looked up once however many connections wait for it, and the answer is reused until it is old', async () => {
  let t = 0;
  const resolver = slowResolver();
  const lookup = createHostLookup({ ttlMs: 2000, now: () => t, resolve: resolver.resolve });
  const waiting = [lookupOnce(lookup, 'app1'), lookupOnce(lookup, 'app1'), lookupOnce(lookup, 'app1')];
  assert.equal(resolver.asked.length, 1, 'one getaddrinfo for three callers');
  resolver.asked[0]!.answer(null, [{ address: '172.18.0.3', family: 4 }]);
  for (const answer of await Promise.all(waiting)) assert.deepEqual(answer.addresses, [{ address: '172.18.0.3', family: 4 }]);
  t = 1500;
  await lookupOnce(lookup, 'app1');
  assert.equal(resolver.asked.length, 1, 'still fresh: no new lookup');
});

test('while a known name is looked up again (a dead container: 10 s), callers get its last answer at once, only one lookup runs, and a failed one forgets the address', async () => {
  let t = 0;
  const resolver = slowResolver();
  const lookup = createHostLookup({ ttlMs: 2000, now: () => t, resolve: resolver.resolve });
  const first = lookupOnce(lookup, 'app1');
  resolver.asked[0]!.answer(null, [{ address: '172.18.0.3', family: 4 }]);
  await first;
  t = 5000;
  for (let i = 0; i < 20; i += 1) assert.deepEqual((await lookupOnce(lookup, 'app1')).addresses, [{ address: '172.18.0.3', family: 4 }]);
  assert.equal(resolver.asked.length, 2, 'twenty callers, one lookup in flight');
  resolver.asked[1]!.answer(Object.assign(new Error('getaddrinfo EAI_AGAIN app1'), { code: 'EAI_AGAIN' }), []);
  // The name stopped resolving: its old address is forgotten (Docker may give it to another container).
  const after = lookupOnce(lookup, 'app1');
  assert.equal(resolver.asked.length, 3, 'looked up afresh, not answered from the old address');
  resolver.asked[2]!.answer(Object.assign(new Error('getaddrinfo EAI_AGAIN app1'), { code: 'EAI_AGAIN' }), []);
  assert.equal((await after).error?.code, 'EAI_AGAIN');
});

test('a name never resolved fails with the resolver\'s error; other names are not held up by it', async () => {
  const resolver = slowResolver();
  const lookup = createHostLookup({ resolve: resolver.resolve });
  const dead = lookupOnce(lookup, 'app9');
  const live = lookupOnce(lookup, 'app2');
  resolver.asked[1]!.answer(null, [{ address: '172.18.0.4', family: 4 }]);
  assert.deepEqual((await live).addresses, [{ address: '172.18.0.4', family: 4 }], 'app2 answered while app9 still waits');
  resolver.asked[0]!.answer(Object.assign(new Error('getaddrinfo EAI_AGAIN app9'), { code: 'EAI_AGAIN' }), []);
  assert.equal((await dead).error?.code, 'EAI_AGAIN');
});

test('the lookup works for a real connection, with and without { all }', async () => {
  const lookup = createHostLookup();
  const all = await lookupOnce(lookup, 'localhost');
  assert.ok(all.addresses.length > 0 && all.addresses.every((a) => typeof a.address === 'string'));
  const single = await new Promise<[string, number]>((resolve, reject) => {
    (lookup as unknown as (h: string, o: object, cb: (e: Error | null, a: string, f: number) => void) => void)('localhost', { family: 4 }, (e, a, f) => (e ? reject(e) : resolve([a, f])));
  });
  assert.deepEqual(single, ['127.0.0.1', 4]);
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

test('the health probe: 2xx is healthy; 503, a refused port and an instance that never answers are not, within the time', async () => {
  const ok = await serve((req, res) => { res.statusCode = req.url === '/healthz' ? 200 : 404; res.end(); });
  const failing = await serve((_req, res) => { res.statusCode = 503; res.end('draining'); });
  const hung = await serve(() => undefined);
  const anyPath = await serve((_req, res) => { res.statusCode = 200; res.end(); });
  const instance = (port: number) => ({ id: 'x', address: 'localhost', port, meta: { [HEALTH_PATH_META]: '/healthz' }, tags: [] }) as never;
  try {
    assert.equal(await answersHealthy(instance(ok.port), 1000), true);
    assert.equal(await answersHealthy(instance(failing.port), 1000), false);
    const closed = ok.port; // after this server closes, its port refuses
    ok.server.close();
    assert.equal(await answersHealthy(instance(closed), 1000), false);
    // Probed on a live server that answers 200 on every path: only the path itself can make it unhealthy.
    assert.equal(await answersHealthy({ id: 'x', address: 'localhost', port: anyPath.port, meta: { [HEALTH_PATH_META]: '/healthz' }, tags: [] } as never, 1000), true);
    assert.equal(await answersHealthy({ id: 'x', address: 'localhost', port: anyPath.port, meta: { [HEALTH_PATH_META]: 'healthz' }, tags: [] } as never, 1000), false, 'a health path without its slash is no URL: not healthy, and no throw');
    const started = performance.now();
    assert.equal(await answersHealthy(instance(hung.port), 300), false);
    assert.ok(performance.now() - started < 1000, 'gave up near its 300 ms');
  } finally {
    failing.server.close();
    anyPath.server.close();
    hung.server.closeAllConnections();
    hung.server.close();
  }
});
