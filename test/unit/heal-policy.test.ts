// Issue 20: when the agent restarts its app — only failures a restart can
// fix, only after --heal-after, never in the grace after a restart, at most
// the budget per window.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HealPolicy } from '../../agent/heal/heal-policy.ts';
import type { ProbeResult } from '../../agent/health-probe.ts';

const settings = { healAfterMs: 20_000, graceMs: 60_000, budget: 3, windowMs: 3_600_000, healOnError: false };
const hung: ProbeResult = { healthy: false, output: 'GET /healthz: no answer within 800 ms', failure: 'timeout' };
const refused: ProbeResult = { healthy: false, output: 'GET /healthz: ECONNREFUSED', failure: 'refused' };
const dbDown: ProbeResult = { healthy: false, output: 'GET /healthz: HTTP 503: database down', failure: 'status' };
const ok: ProbeResult = { healthy: true, output: 'GET /healthz: HTTP 200' };

test('a hang heals only once it lasted --heal-after', () => {
  const policy = new HealPolicy(settings);
  policy.observe(hung, 0);
  assert.deepEqual(policy.decide(19_999), { act: false, why: 'not-long-enough' });
  policy.observe(refused, 10_000);
  assert.deepEqual(policy.decide(20_000), { act: true, failingForMs: 20_000 }, 'refused and timeout both count, from the first');
});

test('a passing probe starts the count again', () => {
  const policy = new HealPolicy(settings);
  policy.observe(hung, 0);
  policy.observe(ok, 15_000);
  policy.observe(hung, 16_000);
  assert.equal(policy.decide(30_000).act, false);
  assert.equal(policy.decide(36_000).act, true);
});

test('an app that answers its health endpoint with an error is not restarted unless --heal-on-error', () => {
  const policy = new HealPolicy(settings);
  policy.observe(dbDown, 0);
  assert.deepEqual(policy.decide(60_000), { act: false, why: 'not-fixable' });
  policy.observe(ok, 61_000);
  assert.deepEqual(policy.decide(61_000), { act: false, why: 'healthy' }, 'healthy again: no longer "not fixable"');
  const eager = new HealPolicy({ ...settings, healOnError: true });
  eager.observe(dbDown, 0);
  assert.equal(eager.decide(20_000).act, true);
});

test('failures during the grace after a restart do not count; after it, they count from then', () => {
  const policy = new HealPolicy(settings);
  policy.observe(hung, 0);
  policy.acted(20_000);
  for (let t = 21_000; t < 80_000; t += 1000) policy.observe(refused, t);
  assert.deepEqual(policy.decide(79_000), { act: false, why: 'grace' });
  policy.observe(refused, 80_000);
  assert.deepEqual(policy.decide(99_999), { act: false, why: 'not-long-enough' }, 'the slow start is not held against it');
  assert.equal(policy.decide(100_000).act, true);
});

test('at most --heal-budget restarts per window, then the budget is spent until the oldest leaves the window', () => {
  const policy = new HealPolicy({ ...settings, graceMs: 1000 });
  let t = 0;
  for (let i = 0; i < 3; i += 1) {
    policy.observe(hung, t);
    t += 20_000;
    assert.equal(policy.decide(t).act, true);
    policy.acted(t);
    t += 2000;
  }
  policy.observe(hung, t);
  assert.deepEqual(policy.decide(t + 30_000), { act: false, why: 'budget-spent' });
  assert.equal(policy.healsInWindow(t), 3);
  assert.equal(policy.decide(3_600_000 + 20_001).act, true, 'an hour after the first, one restart is allowed again');
});
