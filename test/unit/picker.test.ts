import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InstanceStates } from '../../balancer/health/instance-state.ts';
import { createPicker } from '../../balancer/proxy/picker.ts';
import { buildTable, diffTables, EMPTY_TABLE } from '../../balancer/discovery/routing-table.ts';
import type { Instance } from '../../shared/instance.ts';

const instance = (id: string): Instance => ({ id, service: 'web', node: id, address: '127.0.0.1', port: 1, tags: [], meta: {} });

function setup(ids: string[], { slowStartMs = 0, ejectAfter = 1 } = {}) {
  const states = new InstanceStates({ ejectAfter, ejectForMs: 1000, slowStartMs });
  const table = buildTable(EMPTY_TABLE, ids.map(instance));
  states.applyDiff(diffTables(EMPTY_TABLE, table), 0, true);
  return { states, table };
}

function share(pick: () => string | undefined, n: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i += 1) {
    const id = pick() ?? 'none';
    counts[id] = (counts[id] ?? 0) + 1;
  }
  return counts;
}

test('round robin spreads evenly', () => {
  const { states, table } = setup(['a', 'b', 'c']);
  const picker = createPicker('round-robin', states);
  assert.deepEqual(share(() => picker.pick(table, new Set(), 0)?.id, 300), { a: 100, b: 100, c: 100 });
});

test('least outstanding avoids the instance with requests stuck in flight', () => {
  const { states, table } = setup(['a', 'b']);
  states.begin('a');
  states.begin('a');
  const picker = createPicker('least-outstanding', states);
  assert.deepEqual(share(() => picker.pick(table, new Set(), 0)?.id, 50), { b: 50 });
});

test('least outstanding shares equally idle instances evenly', () => {
  const { states, table } = setup(['a', 'b']);
  const picker = createPicker('least-outstanding', states);
  assert.deepEqual(share(() => picker.pick(table, new Set(), 0)?.id, 100), { a: 50, b: 50 });
});

test('an attempt never goes back to an instance already tried for the request', () => {
  const { states, table } = setup(['a', 'b']);
  const picker = createPicker('round-robin', states);
  assert.equal(picker.pick(table, new Set(['a']), 0)?.id, 'b');
  assert.equal(picker.pick(table, new Set(['a', 'b']), 0), undefined);
  assert.equal(picker.hasAlternative(table, new Set(['a'])), true);
  assert.equal(picker.hasAlternative(table, new Set(['a', 'b'])), false);
  assert.equal(picker.hasAlternative(table, 'a'), true, 'one tried, given as its ID');
});

test('an ejected instance is skipped, unless every instance is ejected (panic: try them all)', () => {
  const { states, table } = setup(['a', 'b']);
  const picker = createPicker('round-robin', states);
  states.begin('a');
  assert.equal(states.failed('a', 'connect', 'refused', true, 10), true);
  assert.deepEqual(share(() => picker.pick(table, new Set(), 20)?.id, 10), { b: 10 });
  states.begin('b');
  states.failed('b', 'timeout', 'slow', true, 30);
  assert.deepEqual(share(() => picker.pick(table, new Set(), 40)?.id, 10), { a: 5, b: 5 });
});

// A small seeded generator (mulberry32), so shares are repeatable.
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('a readmitted instance ramps up from 10% of its share over the slow-start period', () => {
  const { states, table } = setup(['a', 'b'], { slowStartMs: 1000 });
  states.begin('a');
  states.failed('a', 'connect', 'refused', true, 0);
  states.readmit('a', 1000);
  assert.deepEqual([1000, 1500, 2000].map((t) => Math.round(states.weight('a', t) * 100) / 100), [0.1, 0.55, 1]);
  const picker = createPicker('round-robin', states, seeded(7));
  const early = share(() => picker.pick(table, new Set(), 1000)?.id, 2000);
  const middle = share(() => picker.pick(table, new Set(), 1500)?.id, 2000);
  const late = share(() => picker.pick(table, new Set(), 2000)?.id, 2000);
  // Of round robin's even split, a gets ~10% of its half at first, ~55% midway, all of it at the end.
  assert.ok((early.a ?? 0) > 40 && (early.a ?? 0) < 170, `early share of a: ${early.a}`);
  assert.ok((middle.a ?? 0) > 400 && (middle.a ?? 0) < 800, `middle share of a: ${middle.a}`);
  assert.ok((late.a ?? 0) > 900 && (late.a ?? 0) < 1100, `late share of a: ${late.a}`);
});

test('failures below the ejection threshold do not eject; a success resets the count', () => {
  const { states } = setup(['a'], { ejectAfter: 3 });
  for (let i = 0; i < 2; i += 1) {
    states.begin('a');
    assert.equal(states.failed('a', 'timeout', 'slow', true, i), false);
  }
  states.begin('a');
  states.succeeded('a');
  for (let i = 0; i < 2; i += 1) {
    states.begin('a');
    assert.equal(states.failed('a', 'timeout', 'slow', true, i), false);
  }
  states.begin('a');
  assert.equal(states.failed('a', 'timeout', 'slow', true, 9), true);
  assert.equal(states.get('a')?.outstanding, 0);
  assert.equal(states.get('a')?.ejections, 1);
});

test('instances joining after the first table start in slow start; the first table does not', () => {
  const states = new InstanceStates({ ejectAfter: 1, ejectForMs: 1000, slowStartMs: 3000 });
  const first = buildTable(EMPTY_TABLE, [instance('a')]);
  states.applyDiff(diffTables(EMPTY_TABLE, first), 0, true);
  const second = buildTable(first, [instance('a'), instance('b')]);
  states.applyDiff(diffTables(first, second), 100, false);
  assert.equal(states.weight('a', 100), 1);
  assert.equal(states.weight('b', 100), 0.1);
  assert.equal(states.weight('b', 3100), 1);
});
