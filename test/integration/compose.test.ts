// No Docker engine runs on our machines, so the compose file is checked the
// way Docker would read it (docker-compose config), not run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';

test('docker-compose.yml is valid and describes Consul, two app + agent pairs and the balancer', () => {
  const which = spawnSync('sh', ['-c', 'command -v docker-compose']);
  assert.equal(which.status, 0, 'docker-compose is not installed: ./sempre test installs it (apt-get install docker-compose)');
  const result = spawnSync('docker-compose', ['-f', join(PROJECT_ROOT, 'docker-compose.yml'), 'config'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const services = spawnSync('docker-compose', ['-f', join(PROJECT_ROOT, 'docker-compose.yml'), 'config', '--services'], { encoding: 'utf8' });
  assert.deepEqual(services.stdout.trim().split('\n').sort(), ['agent1', 'agent2', 'app1', 'app2', 'balancer', 'consul']);
  // Every command the compose file runs exists in the image's sources.
  for (const entry of ['demo-app/server.ts', 'agent/main.ts', 'balancer/main.ts']) {
    assert.match(result.stdout, new RegExp(`node ${entry}`));
    assert.ok(existsSync(join(PROJECT_ROOT, entry)), `${entry} exists`);
  }
  assert.match(result.stdout, /127\.0\.0\.1:8081:8081|host_ip: 127\.0\.0\.1/, 'the admin port is published on loopback only');
});
