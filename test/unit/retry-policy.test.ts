import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyError, countsAgainstInstance, mayRetry, type FailureKind } from '../../balancer/proxy/retry-policy.ts';

// The whole decision table: [method, failure] → retried on another instance?
const TABLE: Array<[string, FailureKind, boolean]> = [];
const EXPECTED: Record<string, Record<FailureKind, boolean>> = {
  GET: { connect: true, reset: true, timeout: true, status: true },
  HEAD: { connect: true, reset: true, timeout: true, status: true },
  OPTIONS: { connect: true, reset: true, timeout: true, status: true },
  PUT: { connect: true, reset: true, timeout: true, status: true },
  DELETE: { connect: true, reset: true, timeout: true, status: true },
  POST: { connect: true, reset: false, timeout: false, status: false },
  PATCH: { connect: true, reset: false, timeout: false, status: false },
};
for (const [method, row] of Object.entries(EXPECTED)) {
  for (const [failure, retried] of Object.entries(row)) TABLE.push([method, failure as FailureKind, retried]);
}

for (const [method, failure, retried] of TABLE) {
  test(`${method} after a ${failure} failure is ${retried ? '' : 'not '}retried`, () => {
    assert.equal(mayRetry(method, failure), retried);
  });
}

test('method names are matched case-insensitively', () => {
  assert.equal(mayRetry('get', 'reset'), true);
  assert.equal(mayRetry('post', 'reset'), false);
});

test('an error before the socket connected means nothing was sent, whatever its code', () => {
  assert.equal(classifyError({ code: 'ECONNREFUSED' }, false), 'connect');
  assert.equal(classifyError({ code: 'ECONNECT_TIMEOUT' }, false), 'connect');
  assert.equal(classifyError({ code: 'ECONNRESET' }, false), 'connect');
  assert.equal(classifyError(undefined, false), 'connect');
});

test('a reset after connecting is ambiguous; our response timeout is a timeout', () => {
  assert.equal(classifyError({ code: 'ECONNRESET' }, true), 'reset');
  assert.equal(classifyError({ code: 'EPIPE' }, true), 'reset');
  assert.equal(classifyError({ code: 'ERESPONSETIMEOUT' }, true), 'timeout');
  assert.equal(classifyError({ code: 'ECONNREFUSED' }, true), 'connect');
});

test('a reset on a reused keep-alive socket does not count against the instance', () => {
  assert.equal(countsAgainstInstance('reset', true), false);
  assert.equal(countsAgainstInstance('reset', false), true);
  assert.equal(countsAgainstInstance('connect', true), true);
  assert.equal(countsAgainstInstance('timeout', false), false, 'a slow page is not a failed instance: the stall detector decides');
  assert.equal(countsAgainstInstance('status', false), false);
});
