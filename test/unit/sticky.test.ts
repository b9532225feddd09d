import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InstanceStates } from '../../balancer/health/instance-state.ts';
import { createPicker } from '../../balancer/proxy/picker.ts';
import { buildTable, diffTables, EMPTY_TABLE } from '../../balancer/discovery/routing-table.ts';
import { cookieValue, createSticky, stickyToken } from '../../balancer/proxy/sticky.ts';
import { STICKY_META, type Instance } from '../../shared/instance.ts';

const instance = (id: string, sticky = true): Instance => ({ id, service: 'web', node: id, address: '10.0.1.11', port: 3000, tags: [], meta: sticky ? { [STICKY_META]: 'true' } : {} });
const settings = { sticky: 'auto' as const, stickyCookie: 'sempre_sticky', stickySecret: 'k'.repeat(32), secure: false };

test('the cookie names an instance by a keyed hash: no address, another key gives another value', () => {
  const sticky = createSticky(settings);
  const cookie = sticky.setCookie('web-app1');
  assert.match(cookie, /^sempre_sticky=[A-Za-z0-9_-]{22}; Path=\/; HttpOnly; SameSite=Lax$/);
  assert.doesNotMatch(cookie, /10\.0\.1\.11|app1|3000/);
  assert.notEqual(stickyToken('another key', 'web-app1'), stickyToken(settings.stickySecret, 'web-app1'));
  assert.match(createSticky({ ...settings, secure: true }).setCookie('web-app1'), /; Secure$/);
});

test('a balancer with the same key reads the cookie another one set (a pair, or workers)', () => {
  const table = buildTable(EMPTY_TABLE, [instance('a'), instance('b')]);
  const first = createSticky(settings);
  const second = createSticky(settings);
  const value = first.setCookie('b').split(';')[0]!;
  assert.equal(second.boundInstance(table, `theme=dark; ${value}; connect.sid=xyz`), 'b');
  assert.equal(createSticky({ ...settings, stickySecret: 'other'.repeat(8) }).boundInstance(table, value), undefined, 'another key: the client is simply rebound');
});

test('auto follows what the instances declare; on and off override', () => {
  const declared = buildTable(EMPTY_TABLE, [instance('a'), instance('b', false)]);
  const plain = buildTable(EMPTY_TABLE, [instance('a', false), instance('b', false)]);
  assert.equal(createSticky(settings).enabled(declared), true);
  assert.equal(createSticky(settings).enabled(plain), false);
  assert.equal(createSticky({ ...settings, sticky: 'on' }).enabled(plain), true);
  assert.equal(createSticky({ ...settings, sticky: 'off' }).enabled(declared), false);
  const value = createSticky(settings).setCookie('a').split(';')[0]!;
  assert.equal(createSticky(settings).boundInstance(plain, value), undefined, 'not sticky: the cookie is ignored');
});

test('a cookie naming an instance that left the table binds to nothing', () => {
  const sticky = createSticky(settings);
  const value = sticky.setCookie('gone').split(';')[0]!;
  assert.equal(sticky.boundInstance(buildTable(EMPTY_TABLE, [instance('a')]), value), undefined);
});

test('cookie parsing finds only the exact name', () => {
  assert.equal(cookieValue('xsempre_sticky=1; sempre_sticky=2', 'sempre_sticky'), '2');
  assert.equal(cookieValue('sempre_sticky=3', 'sempre_sticky'), '3');
  assert.equal(cookieValue(['a=1', 'sempre_sticky=4'], 'sempre_sticky'), '4');
  assert.equal(cookieValue('a=1', 'sempre_sticky'), undefined);
  assert.equal(cookieValue(undefined, 'sempre_sticky'), undefined);
});

test('the picker keeps a sticky client on its instance unless it is ejected, tried or full', () => {
  const states = new InstanceStates({ ejectAfter: 1, ejectForMs: 1000, slowStartMs: 0 });
  const table = buildTable(EMPTY_TABLE, [instance('a'), instance('b')]);
  states.applyDiff(diffTables(EMPTY_TABLE, table), 0, true);
  const picker = createPicker('least-outstanding', states, Math.random, 2);
  for (let i = 0; i < 20; i += 1) assert.equal(picker.pick(table, new Set(), 0, 'b')?.id, 'b');
  assert.equal(picker.pick(table, new Set(['b']), 0, 'b')?.id, 'a', 'a retry goes elsewhere');
  states.begin('b');
  states.begin('b');
  assert.equal(picker.pick(table, new Set(), 0, 'b')?.id, 'a', 'at its in-flight cap');
  states.succeeded('b');
  states.eject('b', 'connect', 'refused', 0);
  assert.equal(picker.pick(table, new Set(), 0, 'b')?.id, 'a', 'ejected');
});
