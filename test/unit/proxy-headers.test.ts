import assert from 'node:assert/strict';
import { test } from 'node:test';
import { upstreamRequestHeaders } from '../../balancer/proxy/http-path.ts';

const pairs = (flat: string[]) => Array.from({ length: flat.length / 2 }, (_v, i) => [flat[2 * i], flat[2 * i + 1]]);

test('the request to the instance keeps the client\'s headers, drops hop-by-hop ones and sets the forwarding headers', () => {
  const out = pairs(upstreamRequestHeaders([
    'Host', 'shop.example.com', 'Cookie', 'a=1', 'Connection', 'keep-alive, X-Secret-Hop', 'X-Secret-Hop', '1',
    'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'TE', 'trailers', 'Expect', '100-continue',
    'X-Forwarded-For', '203.0.113.7', 'X-Forwarded-Proto', 'https', 'X-Request-Id', 'spoofed', 'Accept', '*/*',
  ], '198.51.100.2', false, 'req-1'));
  assert.deepEqual(out, [
    ['Host', 'shop.example.com'], ['Cookie', 'a=1'], ['Accept', '*/*'],
    ['x-forwarded-for', '203.0.113.7, 198.51.100.2'], ['x-forwarded-proto', 'http'], ['x-forwarded-host', 'shop.example.com'], ['x-request-id', 'req-1'],
  ]);
});

test('an HTTP/2 request: pseudo-headers dropped, :authority becomes Host', () => {
  const out = pairs(upstreamRequestHeaders([':method', 'GET', ':path', '/', ':authority', 'shop.example.com', ':scheme', 'https', 'accept', '*/*'], '::1', true, 'r'));
  assert.deepEqual(out, [['accept', '*/*'], ['host', 'shop.example.com'], ['x-forwarded-for', '::1'], ['x-forwarded-proto', 'https'], ['x-forwarded-host', 'shop.example.com'], ['x-request-id', 'r']]);
});
