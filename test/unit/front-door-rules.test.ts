// Issue 22: which requests the balancer answers itself (request-rules.ts) and
// whose fault a failed attempt is (whose-fault.ts): the request's own faults
// never count against an instance.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { checkRequest } from '../../balancer/front/request-rules.ts';
import { whoseFault } from '../../balancer/proxy/whose-fault.ts';

function request(method: string, url: string, rawHeaders: string[] = ['Host', 'a'], httpVersionMajor = 1): IncomingMessage {
  return { method, url, rawHeaders, httpVersionMajor } as unknown as IncomingMessage;
}
const rules = { allowTrace: false };

test('an ordinary request passes the front door', () => {
  assert.equal(checkRequest(request('GET', '/a?b=c'), rules), undefined);
  assert.equal(checkRequest(request('POST', 'http://example.com/x'), rules), undefined, 'the absolute form is proxied');
  assert.equal(checkRequest(request('OPTIONS', '/path'), rules), undefined, "a resource's OPTIONS goes to the app");
});

test('more than one Host, in any case, is a 400 (RFC 9112 §3.2)', () => {
  for (const headers of [['Host', 'a', 'Host', 'b'], ['host', 'a', 'HOST', 'a'], ['Host', 'a', 'X', '1', 'hOsT', 'a']]) {
    const refusal = checkRequest(request('GET', '/', headers), rules);
    assert.equal(refusal?.status, 400, JSON.stringify(headers));
    assert.equal(refusal?.reason, 'duplicate-host');
  }
  assert.equal(checkRequest(request('GET', '/', ['Host', 'a', 'X-Host', 'b']), rules), undefined);
  assert.equal(checkRequest(request('GET', '/', [':authority', 'a'], 2), rules), undefined);
});

test('a Host that is not host[:port] is a 400 (undici would assert on it)', () => {
  for (const host of ['[abc', 'a b', 'a/b', 'a@b']) assert.equal(checkRequest(request('GET', '/', ['Host', host]), rules)?.reason, 'bad-host', host);
  for (const host of ['example.com', 'example.com:8080', '[::1]:80', '127.0.0.1', '']) assert.equal(checkRequest(request('GET', '/', ['Host', host]), rules), undefined, host);
});

test("an assertion undici throws before connecting is the request's fault; after connecting, the instance's", () => {
  assert.equal(whoseFault({ code: 'ERR_ASSERTION', message: 'assert(idx !== -1)' }, { connected: false, requestBroken: false }).who, 'request');
  assert.equal(whoseFault({ code: 'ERR_ASSERTION', message: 'x' }, { connected: true, requestBroken: false }).who, 'instance');
});

test('OPTIONS * is answered by the balancer with Allow; * with another method is a 400', () => {
  const options = checkRequest(request('OPTIONS', '*'), rules);
  assert.equal(options?.status, 200);
  assert.equal(options?.reason, undefined, 'not counted as a refusal');
  assert.match(options?.headers.allow ?? '', /GET, HEAD, POST/);
  assert.equal(checkRequest(request('GET', '*'), rules)?.status, 400);
});

test('TRACE gets 405 with Allow unless --allow-trace', () => {
  const trace = checkRequest(request('TRACE', '/'), rules);
  assert.equal(trace?.status, 405);
  assert.match(trace?.headers.allow ?? '', /GET/);
  assert.equal(checkRequest(request('TRACE', '/'), { allowTrace: true }), undefined);
});

test('a request target that is neither a path nor an absolute http(s) URL is a 400', () => {
  assert.equal(checkRequest(request('GET', 'example.com:443'), rules)?.status, 400);
  assert.equal(checkRequest(request('GET', 'ftp://a/'), rules)?.status, 400);
});

test("undici's refusals and a body that broke off are the request's fault: 400 or 501, never the instance's", () => {
  assert.deepEqual(whoseFault({ code: 'UND_ERR_INVALID_ARG', message: 'duplicate host header' }, { connected: false, requestBroken: false }), { who: 'request', status: 400, message: 'duplicate host header' });
  assert.equal(whoseFault({ code: 'UND_ERR_NOT_SUPPORTED', message: 'expect header not supported' }, { connected: false, requestBroken: false }).who, 'request');
  assert.deepEqual(whoseFault({ code: 'UND_ERR_NOT_SUPPORTED', message: 'x' }, { connected: false, requestBroken: false }), { who: 'request', status: 501, message: 'x' });
  assert.equal(whoseFault({ code: 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', message: 'x' }, { connected: true, requestBroken: false }).who, 'request');
  assert.equal(whoseFault({ code: 'ECONNRESET', message: 'aborted' }, { connected: true, requestBroken: true }).who, 'request', "the client's upload broke: not the instance's reset");
});

test("the instance's own failures stay the instance's", () => {
  assert.deepEqual(whoseFault({ code: 'ECONNREFUSED' }, { connected: false, requestBroken: false }), { who: 'instance', kind: 'connect' });
  assert.deepEqual(whoseFault({ code: 'ECONNRESET' }, { connected: true, requestBroken: false }), { who: 'instance', kind: 'reset' });
  assert.deepEqual(whoseFault({ code: 'UND_ERR_SOCKET' }, { connected: true, requestBroken: false }), { who: 'instance', kind: 'reset' });
  assert.deepEqual(whoseFault({ code: 'ERESPONSETIMEOUT' }, { connected: true, requestBroken: false }), { who: 'instance', kind: 'timeout' });
});
