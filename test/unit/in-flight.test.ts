// The in-flight list behind --response-timeout, abandon() and the stall
// detector's oldest unanswered request: entries in order, removal at any
// point, and nothing left linked to a finished attempt.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InFlightList, type InFlightEntry } from '../../balancer/proxy/in-flight.ts';

class Entry implements InFlightEntry<Entry> {
  prevInFlight: Entry | undefined = undefined;
  nextInFlight: Entry | undefined = undefined;
  inFlightList: unknown = undefined;
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
}
const names = (list: InFlightList<Entry>) => list.entries().map((e) => e.name);

test('entries come out oldest first; removal from the head, middle or tail keeps the rest in order', () => {
  const list = new InFlightList<Entry>();
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => new Entry(n)) as [Entry, Entry, Entry, Entry];
  for (const e of [a, b, c, d]) list.add(e);
  assert.deepEqual(names(list), ['a', 'b', 'c', 'd']);
  list.delete(b);
  assert.deepEqual(names(list), ['a', 'c', 'd']);
  list.delete(a);
  list.delete(d);
  assert.deepEqual(names(list), ['c']);
  assert.equal(list.size, 1);
  list.delete(c);
  assert.deepEqual(names(list), []);
  assert.equal(list.size, 0);
  list.add(b);
  assert.deepEqual(names(list), ['b'], 'usable again once empty');
});

test('a removed entry names no other, and adding twice or removing from the wrong list changes nothing', () => {
  const one = new InFlightList<Entry>();
  const other = new InFlightList<Entry>();
  const [a, b, c] = ['a', 'b', 'c'].map((n) => new Entry(n)) as [Entry, Entry, Entry];
  for (const e of [a, b, c]) one.add(e);
  one.delete(b);
  assert.equal(b.prevInFlight, undefined);
  assert.equal(b.nextInFlight, undefined);
  assert.equal(b.inFlightList, undefined);
  one.add(a);
  other.delete(c);
  assert.deepEqual(names(one), ['a', 'c']);
  assert.equal(one.size, 2);
  assert.equal(other.size, 0);
  assert.throws(() => other.add(c), /already in flight on another list/);
  assert.deepEqual(names(one), ['a', 'c'], 'the refused add changed nothing');
});

test('first() finds the oldest entry that matches, or none', () => {
  const list = new InFlightList<Entry>();
  for (const n of ['a', 'b', 'c']) list.add(new Entry(n));
  assert.equal(list.first((e) => e.name !== 'a')?.name, 'b');
  assert.equal(list.first(() => false), undefined);
  assert.equal(new InFlightList<Entry>().first(() => true), undefined);
});

test('entries() is a copy: removing each entry while going through it reaches them all', () => {
  const list = new InFlightList<Entry>();
  const all = Array.from({ length: 5 }, (_v, i) => new Entry(String(i)));
  for (const e of all) list.add(e);
  const seen: string[] = [];
  for (const e of list.entries()) {
    seen.push(e.name);
    list.delete(e);
  }
  assert.deepEqual(seen, ['0', '1', '2', '3', '4']);
  assert.equal(list.size, 0);
});
