// Load never leaves this machine: a lab address follows the default route
// once the lab is down, so a target that is not loopback must be an allowed
// lab address and routed to the lab's bridge at that moment.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { assertSafeTarget } from '../../drill/load-generator.ts';
import { BRIDGE, LAB_ADDRESSES } from '../../lab/netns-lab.ts';

const target = (url: string) => () => assertSafeTarget(new URL(url), LAB_ADDRESSES);

test('load goes to loopback, and to a lab address only while it is routed to the lab bridge; never elsewhere', () => {
  assert.doesNotThrow(target('http://127.0.0.1:8080/'));
  assert.doesNotThrow(target('http://localhost:8080/'));
  assert.throws(target('http://192.0.2.10/'), /load target 192\.0\.2\.10 is not loopback or a lab address/);
  assert.throws(target('http://10.213.48.1/'), /not loopback or a lab address/);
  const labUp = spawnSync('ip', ['link', 'show', BRIDGE], { stdio: 'ignore' }).status === 0;
  if (labUp) assert.doesNotThrow(target('http://10.213.47.1:8096/'), 'the lab is up: its addresses are routed to its bridge');
  else assert.throws(target('http://10.213.47.1:8096/'), /not on a link of the lab .*is the lab down\?/);
});
