// Load leaves this machine never: wrk runs in the root namespace, where a
// lab address follows the default route once the lab is down, so every
// load is checked against loopback and the lab bridge's route first.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { assertLoadStaysLocal, BRIDGE } from '../../lab/netns-lab.ts';

test('load goes to loopback, and to a lab address only while it is routed to the lab bridge; never elsewhere', () => {
  assert.doesNotThrow(() => assertLoadStaysLocal('http://127.0.0.1:8080/'));
  assert.doesNotThrow(() => assertLoadStaysLocal('http://localhost:8080/'));
  assert.throws(() => assertLoadStaysLocal('http://192.0.2.10/'), /refusing to send load to 192\.0\.2\.10: only loopback and the lab's 10\.213\.47\.0\/24/);
  assert.throws(() => assertLoadStaysLocal('http://10.213.48.1/'), /only loopback and the lab's/);
  const labUp = spawnSync('ip', ['link', 'show', BRIDGE], { stdio: 'ignore' }).status === 0;
  if (labUp) assert.doesNotThrow(() => assertLoadStaysLocal('http://10.213.47.1:8096/'), 'the lab is up: its addresses are routed to its bridge');
  else assert.throws(() => assertLoadStaysLocal('http://10.213.47.1:8096/'), /not routed to the lab's bridge sempre-br0 .*is the lab down\?/);
});
