import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTable, diffTables, EMPTY_TABLE, parseHealthEntries, sameInstances } from '../../balancer/discovery/routing-table.ts';
import type { Instance } from '../../shared/instance.ts';

const instance = (id: string, address = `10.0.0.${id.at(-1)}`, port = 3000): Instance => ({ id, service: 'web', node: `node-${id}`, address, port, tags: [], meta: {} });

function entry(id: string, serviceAddress: string, nodeAddress = '10.9.9.9', port = 3000) {
  return { Node: { Node: `n-${id}`, Address: nodeAddress }, Service: { ID: id, Service: 'web', Address: serviceAddress, Port: port, Tags: ['v1'], Meta: { version: '1' } }, Checks: [] };
}

test('a new table is a new immutable snapshot; the old one is unchanged', () => {
  const first = buildTable(EMPTY_TABLE, [instance('app2'), instance('app1')]);
  const second = buildTable(first, [instance('app1')]);
  assert.deepEqual(first.instances.map((i) => i.id), ['app1', 'app2']);
  assert.deepEqual(second.instances.map((i) => i.id), ['app1']);
  assert.equal(second.version, first.version + 1);
  assert.ok(Object.isFrozen(first.instances) && Object.isFrozen(first.instances[0]));
  assert.throws(() => (first.instances as Instance[]).push(instance('app3')));
});

test('the diff names added, removed and moved instances', () => {
  const before = buildTable(EMPTY_TABLE, [instance('app1'), instance('app2')]);
  const after = buildTable(before, [instance('app2', '10.0.0.22'), instance('app3')]);
  const diff = diffTables(before, after);
  assert.deepEqual(diff.added.map((i) => i.id), ['app3']);
  assert.deepEqual(diff.removed.map((i) => i.id), ['app1']);
  assert.deepEqual(diff.changed.map((i) => i.id), ['app2']);
  assert.equal(sameInstances(before, buildTable(before, [instance('app1'), instance('app2')])), true);
  assert.equal(sameInstances(before, after), false);
});

test('Consul entries become instances; the node address stands in for an empty service address', () => {
  const parsed = parseHealthEntries([entry('app1', '10.0.1.11'), entry('app2', '', '10.0.1.12', 8080)]);
  assert.ok(!('error' in parsed));
  assert.deepEqual(parsed.problems, []);
  assert.deepEqual(parsed.instances.map((i) => `${i.id} ${i.address}:${i.port}`), ['app1 10.0.1.11:3000', 'app2 10.0.1.12:8080']);
  assert.deepEqual(parsed.instances[0]?.meta, { version: '1' });
});

test('malformed entries are skipped with a reason and never throw', () => {
  const parsed = parseHealthEntries([entry('app1', '10.0.1.11'), { Service: { ID: 'x' } }, entry('app1', '10.0.1.99'), entry('bad', '', '', 1), 42, { ...entry('p', '1.1.1.1'), Service: { ...entry('p', '1.1.1.1').Service, Port: 70000 } }]);
  assert.ok(!('error' in parsed));
  assert.deepEqual(parsed.instances.map((i) => i.id), ['app1']);
  assert.equal(parsed.problems.length, 5);
  assert.match(parsed.problems[0]!, /^entry 1: Node /);
  assert.match(parsed.problems[1]!, /duplicate instance ID app1/);
  assert.match(parsed.problems[2]!, /instance bad has no address/);
});

test('a response that is not a list is reported, not thrown', () => {
  assert.deepEqual(parseHealthEntries({ error: 'nope' }), { error: 'expected a JSON array of health entries, got object' });
  assert.deepEqual(parseHealthEntries(null), { error: 'expected a JSON array of health entries, got null' });
  assert.deepEqual(parseHealthEntries('<html>'), { error: 'expected a JSON array of health entries, got string' });
});
