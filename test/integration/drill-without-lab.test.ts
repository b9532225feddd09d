// Asked for a drill while no lab is up, the command says how to start one
// and injects nothing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { readLabState } from '../../lab/netns-lab.ts';

test('a drill with the lab down says how to start it, and exits 2', () => {
  assert.equal(readLabState(), undefined, 'no lab is up (none left over from an earlier run)');
  const result = spawnSync(process.execPath, [join(PROJECT_ROOT, 'drill/main.ts'), '--fault', 'crash'], { encoding: 'utf8' });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /the multi-host lab is not up: start it with `sudo \.\/sempre lab up`/);
});

test('a malformed SLO is refused naming the field, before anything runs', () => {
  const result = spawnSync(process.execPath, [join(PROJECT_ROOT, 'drill/main.ts'), '--slo', 'p98=1s'], { encoding: 'utf8' });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /drill\.slo: "p98=1s" must be/);
});
