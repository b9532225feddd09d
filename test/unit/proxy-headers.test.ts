// The request headers an instance receives, on both paths: the HTTP path
// (upstreamRequestHeaders, raw arrays) and the tunnels (setForwardingHeaders,
// req.headers for http-proxy-3). One set of rules in forwarding.ts.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { requestIdSource, setForwardingHeaders, upstreamRequestHeaders, type RequestFacts } from '../../balancer/proxy/forwarding.ts';

const pairs = (flat: string[]) => Array.from({ length: flat.length / 2 }, (_v, i) => [flat[2 * i], flat[2 * i + 1]]);

/** An upgrade request as the tunnels see it: only what setForwardingHeaders reads. */
function tunnelHeaders(rawHeaders: string[], remoteAddress: string, encrypted = false): Record<string, string | string[] | undefined> {
  const req = { rawHeaders, headers: {}, socket: { remoteAddress, encrypted } } as unknown as IncomingMessage;
  setForwardingHeaders(req, 'req-1');
  return { ...req.headers };
}

const CLIENT_HEADERS = [
  'Host', 'shop.example.com', 'Cookie', 'a=1', 'Connection', 'keep-alive, X-Secret-Hop', 'X-Secret-Hop', '1',
  'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'TE', 'trailers', 'Expect', '100-continue', 'Proxy-Authorization', 'Basic eDp5',
  'X-Forwarded-For', '203.0.113.7', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil.example', 'X-Request-Id', 'spoofed', 'Accept', '*/*',
];

test('HTTP path: the client\'s headers kept, hop-by-hop ones dropped, the forwarding headers set', () => {
  const out = pairs(upstreamRequestHeaders(CLIENT_HEADERS, '198.51.100.2', false, 'req-1'));
  assert.deepEqual(out, [
    ['Host', 'shop.example.com'], ['Cookie', 'a=1'], ['Accept', '*/*'],
    ['x-forwarded-for', '203.0.113.7, 198.51.100.2'], ['x-forwarded-proto', 'http'], ['x-forwarded-host', 'shop.example.com'], ['x-request-id', 'req-1'],
  ]);
});

test('HTTP path: an HTTP/2 request loses its pseudo-headers, :authority becomes Host', () => {
  const out = pairs(upstreamRequestHeaders([':method', 'GET', ':path', '/', ':authority', 'shop.example.com', ':scheme', 'https', 'accept', '*/*'], '::1', true, 'r'));
  assert.deepEqual(out, [['accept', '*/*'], ['host', 'shop.example.com'], ['x-forwarded-for', '::1'], ['x-forwarded-proto', 'https'], ['x-forwarded-host', 'shop.example.com'], ['x-request-id', 'r']]);
});

test('HTTP path: cookies and whether there is a body are read in the same pass', () => {
  const facts: RequestFacts = { hasBody: false, cookie: undefined, reqId: '' };
  upstreamRequestHeaders(['Host', 'h', 'Cookie', 'a=1', 'Content-Length', '12', 'cookie', 'b=2'], '::1', false, 'r', facts);
  assert.deepEqual(facts, { hasBody: true, cookie: 'a=1; b=2', reqId: 'r' });
  const empty: RequestFacts = { hasBody: false, cookie: undefined, reqId: '' };
  upstreamRequestHeaders(['Host', 'h', 'Content-Length', '0'], '::1', false, 'r', empty);
  assert.deepEqual(empty, { hasBody: false, cookie: undefined, reqId: 'r' });
});

test("HTTP path: the client's X-Request-Id is kept when it is a plain token, otherwise the request gets a new one", () => {
  const ids = requestIdSource();
  const idOf = (raw: string[]) => {
    const facts: RequestFacts = { hasBody: false, cookie: undefined, reqId: '' };
    const out = pairs(upstreamRequestHeaders(['Host', 'h', ...raw], '::1', false, ids, facts));
    assert.deepEqual(out.filter(([name]) => name!.toLowerCase() === 'x-request-id'), [['x-request-id', facts.reqId]], 'one X-Request-Id, the one logged');
    return facts.reqId;
  };
  assert.equal(idOf(['X-Request-Id', 'abc-123']), 'abc-123');
  const fresh = [idOf([]), idOf(['X-Request-Id', 'has space']), idOf(['X-Request-Id', 'a', 'x-request-id', 'b'])];
  for (const id of fresh) assert.match(id, /^[0-9a-z]+-[0-9a-z]+$/);
  assert.equal(new Set(fresh).size, 3, 'each new ID is different');
});

test('tunnel: the same rules as the HTTP path for the same client headers, but Connection is kept', () => {
  const http = upstreamRequestHeaders(CLIENT_HEADERS, '198.51.100.2', true, 'req-1');
  const asObject = Object.fromEntries(pairs(http).map(([name, value]) => [name!.toLowerCase(), value]));
  assert.deepEqual(tunnelHeaders(CLIENT_HEADERS, '198.51.100.2', true), { ...asObject, connection: 'keep-alive, X-Secret-Hop' });
});

test('tunnel: Connection and Upgrade go to the instance, what Connection names does not', () => {
  const headers = tunnelHeaders([
    'Host', 'chat.example.com', 'Connection', 'Upgrade, X-Secret-Hop', 'Upgrade', 'websocket', 'X-Secret-Hop', '1',
    'Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version', '13',
    'Cookie', 'a=1', 'Cookie', 'sempre=i1', 'X-Forwarded-For', '203.0.113.7', 'X-Forwarded-For', '192.0.2.1', 'Proxy-Authorization', 'Basic eDp5',
  ], '198.51.100.2');
  assert.deepEqual(headers, {
    'host': 'chat.example.com',
    'connection': 'Upgrade, X-Secret-Hop',
    'upgrade': 'websocket',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'sec-websocket-version': '13',
    'cookie': 'a=1; sempre=i1',
    'x-forwarded-for': '203.0.113.7, 192.0.2.1, 198.51.100.2',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'chat.example.com',
    'x-request-id': 'req-1',
  });
});
