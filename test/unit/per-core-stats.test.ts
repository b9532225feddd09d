import assert from 'node:assert/strict';
import { test } from 'node:test';
import { busiestThreadBusyShare, busyShare, median, parseProcStatCpus } from '../../bench/per-core-stats.ts';

test('the median of the per-core rounds: the middle one, or the mean of the middle two', () => {
  assert.equal(median([0.42, 0.93, 0.75]), 0.75);
  assert.equal(median([0.93, 0.42]), (0.42 + 0.93) / 2, 'two rounds: their mean, not the higher one');
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.ok(Number.isNaN(median([])));
});

test("each core's busy share between two readings of /proc/stat: everything but idle and iowait", () => {
  const before = parseProcStatCpus(`cpu  200 0 100 1000 0 0 0 0 0 0
cpu0 100 0 50 500 0 0 0 0 0 0
cpu1 100 0 50 500 0 0 0 0 0 0
intr 1 2 3
`);
  // Over 200 ticks each: cpu0 150 of user, system, irq, softirq and steal (guest is inside user), 50 idle + iowait: 75%; cpu1 120 user, 80 idle + iowait: 60%.
  const after = parseProcStatCpus(`cpu  420 0 110 1100 30 10 20 10 5 0
cpu0 200 0 60 530 20 10 20 10 5 0
cpu1 220 0 50 570 10 0 0 0 0 0
`);
  assert.equal(busyShare(before, after, 0), 0.75);
  assert.equal(busyShare(before, after, 1), 0.6);
  assert.ok(Number.isNaN(busyShare(before, after, 2)), 'a CPU not listed');
  assert.ok(Number.isNaN(busyShare(before, before, 0)), 'no tick passed');
});

test("a proxy's busy share is its busiest thread's: running or waiting for the CPU, not asleep waiting for work", () => {
  const ms = 1e6;
  const before = new Map([[10, { runNs: 100 * ms, waitNs: 5 * ms }], [11, { runNs: 50 * ms, waitNs: 0 }]]);
  // Over 1 s: the event loop (10) ran 600 ms and waited 100 ms for the CPU (a neighbour on its core): busy 70%, asleep 30%.
  // A helper (11) ran 200 ms; a thread (12) that started meanwhile ran 100 ms.
  const after = new Map([[10, { runNs: 700 * ms, waitNs: 105 * ms }], [11, { runNs: 250 * ms, waitNs: 0 }], [12, { runNs: 100 * ms, waitNs: 0 }]]);
  assert.equal(busiestThreadBusyShare(before, after, 1000 * ms), 0.7);
  // Crowded out by a neighbour, not starved: running 300 ms and waiting 680 ms of 1 s is saturated.
  assert.equal(busiestThreadBusyShare(new Map([[10, { runNs: 0, waitNs: 0 }]]), new Map([[10, { runNs: 300 * ms, waitNs: 680 * ms }]]), 1000 * ms), 0.98);
  assert.ok(Number.isNaN(busiestThreadBusyShare(before, new Map(), 1000 * ms)), 'the proxy is gone');
});
