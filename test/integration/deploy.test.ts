// What deploy/ ships is checked the way the servers will read it: the units
// by systemd-analyze verify, the env files by the agent's and balancer's own
// validation, the Consul files by consul validate. Nothing is contacted.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { agentCommand } from '../../agent/options.ts';
import { balancerCommand } from '../../balancer/options.ts';
import { findConsul, PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { loadOptions } from '../../shared/config/options.ts';

const DEPLOY = join(PROJECT_ROOT, 'deploy');
const units = readdirSync(join(DEPLOY, 'systemd')).filter((f) => f.endsWith('.service'));

function readEnv(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}

test('the systemd units pass systemd-analyze verify without a single warning', () => {
  assert.deepEqual(units.sort(), ['consul.service', 'sempre-agent.service', 'sempre-app.service', 'sempre-balancer.service']);
  // A throwaway root: the base units, the four units, and a stub at each
  // ExecStart path (verify checks that the programs exist).
  const root = mkdtempSync(join(tmpdir(), 'sempre-units-'));
  try {
    cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    for (const unit of units) {
      const text = readFileSync(join(DEPLOY, 'systemd', unit), 'utf8');
      writeFileSync(join(root, 'etc/systemd/system', unit), text);
      for (const match of text.matchAll(/^Exec\w+=-?(\S+)/gm)) {
        const stub = join(root, match[1]!);
        mkdirSync(dirname(stub), { recursive: true });
        writeFileSync(stub, '#!/bin/sh\n');
        chmodSync(stub, 0o755);
      }
    }
    const verify = spawnSync('systemd-analyze', ['verify', `--root=${root}`, '--man=no', '--generators=no', ...units], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'no warning either');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("each app host's agent.env passes the agent's own validation", () => {
  for (const host of ['app1', 'app2']) {
    const loaded = loadOptions(agentCommand, [], readEnv(join(DEPLOY, 'hosts', host, 'agent.env')));
    assert.ok(loaded.kind === 'config');
    assert.equal(loaded.values.id, host);
    assert.equal(loaded.values.port, Number(readEnv(join(DEPLOY, 'hosts', host, 'app.env')).APP_PORT), 'the agent watches the port the app listens on');
    assert.match(loaded.values.address, /\.compute\.amazonaws\.com$/);
  }
});

test("infra's balancer.env passes the balancer's own validation, admin on loopback", () => {
  const loaded = loadOptions(balancerCommand, [], readEnv(join(DEPLOY, 'hosts', 'infra', 'balancer.env')));
  assert.ok(loaded.kind === 'config');
  assert.equal(loaded.values.port, 80);
  assert.equal(loaded.values.adminHost, '127.0.0.1');
});

test('each host runs a Consul server of three, with ACLs default-deny, and consul validate accepts its files', () => {
  for (const host of ['app1', 'app2', 'infra']) {
    // What Consul reads on that host: the shared cluster.hcl and the host's own consul.hcl.
    const files = [join(DEPLOY, 'consul', 'cluster.hcl'), join(DEPLOY, 'hosts', host, 'consul.hcl')];
    const text = files.map((f) => readFileSync(f, 'utf8')).join('\n');
    assert.match(text, new RegExp(`node_name = "${host}"`));
    assert.match(text, /server\s+= true/);
    assert.match(text, /bootstrap_expect = 3/);
    assert.match(text, /default_policy\s+= "deny"/);
    assert.doesNotMatch(text, /^\s*encrypt\s*=/m, 'no gossip key is committed');
    const validate = spawnSync(findConsul(), ['validate', ...files], { encoding: 'utf8' });
    assert.equal(validate.status, 0, `${host}: ${validate.stdout}${validate.stderr}`);
  }
});
