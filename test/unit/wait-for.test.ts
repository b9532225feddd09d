import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotYet, waitFor } from '../../lab/processes.ts';

test('waitFor retries on "not yet" (undefined, false, NotYet, an error from what it waits on) and returns the first value', async () => {
  let calls = 0;
  const value = await waitFor('the fourth call', () => {
    calls += 1;
    if (calls === 1) return undefined;
    if (calls === 2) return false;
    if (calls === 3) throw new NotYet('only 3 calls');
    if (calls === 4) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    return calls;
  }, 5000, 1);
  assert.equal(value, 5);
});

test('a failed assertion inside waitFor fails it at once: it is never "not yet"', async () => {
  const started = Date.now();
  let calls = 0;
  await assert.rejects(waitFor('a 200', () => {
    calls += 1;
    assert.equal(502, 200, 'the answer during the wait');
    return true;
  }, 5000, 1), (error: unknown) => error instanceof assert.AssertionError && /the answer during the wait/.test(error.message));
  assert.equal(calls, 1, 'not tried again');
  assert.ok(Date.now() - started < 1000, 'long before its deadline');
});

test('at the deadline, the wait names what it waited for and the last reason', async () => {
  await assert.rejects(waitFor('app9', () => { throw new NotYet('app9 is critical'); }, 50, 10), /timed out after 50 ms waiting for app9 \(last said: app9 is critical\)/);
  await assert.rejects(waitFor('app9', () => { throw new Error('fetch failed'); }, 50, 10), /\(last error: Error: fetch failed\)/);
});
