// What deploy/ ships is checked the way the servers will read it: the units
// by systemd-analyze verify, the env files by the agent's and balancer's own
// validation, the Consul files by consul validate. Nothing is contacted.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { agentCommand } from '../../agent/options.ts';
import { balancerCommand } from '../../balancer/options.ts';
import { findConsul, PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { loadOptions } from '../../shared/config/options.ts';
import { CONSUL_DATACENTER, consulTlsHcl, ensureConsulTls } from '../../ops/consul-tls.ts';
import { consulDialect } from '../../ops/consul-version.ts';
import { planSecrets, writeSecretFiles } from '../../ops/secrets.ts';
import { renderKeepalivedConf } from '../../lab/keepalived.ts';

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

test("cluster.hcl blocks the catalog write endpoints (a host's token stays on its host) and syncs check outputs at once", () => {
  const text = readFileSync(join(DEPLOY, 'consul', 'cluster.hcl'), 'utf8');
  assert.match(text, /block_endpoints = \["\/v1\/catalog\/register", "\/v1\/catalog\/deregister"\]/);
  assert.match(text, /check_update_interval = "0s"/);
  assert.match(text, /client_addr\s+= "127\.0\.0\.1"/, "each host's Consul API on its loopback only");
});

test('the committed Consul files use only keys that kept their name from Consul 1.8 to today', () => {
  const text = [join(DEPLOY, 'consul', 'cluster.hcl'), ...['app1', 'app2', 'infra'].map((h) => join(DEPLOY, 'hosts', h, 'consul.hcl'))]
    .map((f) => readFileSync(f, 'utf8').split('\n').filter((l) => !l.trimStart().startsWith('#')).join('\n')).join('\n');
  // Renamed since 1.8: written per release by `sempre secrets init` instead.
  for (const key of ['master', 'initial_management', 'ui', 'ui_config', 'tls', 'ca_file', 'cert_file', 'key_file', 'verify_incoming', 'verify_outgoing', 'verify_server_hostname']) {
    assert.doesNotMatch(text, new RegExp(`^\\s*${key}\\s*[={]`, 'm'), key);
  }
  assert.match(text, new RegExp(`^datacenter\\s+= "${CONSUL_DATACENTER}"$`, 'm'), 'the datacenter the server certificates name');
});

test('the secrets helper writes what the units read, and consul validate accepts each host with its secrets.hcl and tls.hcl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sempre-secrets-'));
  try {
    // The Consul this machine can run (1.8.7): its key names; a current release's are unit-tested.
    const secrets = planSecrets(undefined, { services: ['web'], servers: ['infra', 'app1', 'app2'], apps: ['app1', 'app2'], balancers: ['infra'] }, '1.8.7');
    const written = writeSecretFiles(join(dir, 's'), secrets).map((f) => f.slice(join(dir, 's').length + 1));
    ensureConsulTls(join(dir, 's'), Object.entries(secrets.hosts).map(([name, host]) => ({ name, server: host.server })), findConsul());
    const agentUnit = readFileSync(join(DEPLOY, 'systemd', 'sempre-agent.service'), 'utf8');
    const balancerUnit = readFileSync(join(DEPLOY, 'systemd', 'sempre-balancer.service'), 'utf8');
    assert.ok(written.includes('app1/agent-secrets.env') && agentUnit.includes('EnvironmentFile=-/etc/sempre/agent-secrets.env'));
    assert.ok(written.includes('infra/balancer-secrets.env') && balancerUnit.includes('EnvironmentFile=-/etc/sempre/balancer-secrets.env'));
    for (const host of ['app1', 'app2', 'infra']) {
      assert.ok(written.includes(`${host}/consul-tls.hcl`));
      // tls.hcl as written, pointing at this run's certificates instead of /etc/consul.d/tls.
      const tlsHcl = join(dir, 's', host, 'tls-here.hcl');
      writeFileSync(tlsHcl, consulTlsHcl(consulDialect('1.8.7'), host, join(dir, 's', host, 'tls')));
      assert.equal(readFileSync(join(dir, 's', host, 'consul-tls.hcl'), 'utf8'), consulTlsHcl(consulDialect('1.8.7'), host));
      const files = [join(DEPLOY, 'consul', 'cluster.hcl'), join(DEPLOY, 'hosts', host, 'consul.hcl'), join(dir, 's', host, 'consul-secrets.hcl'), tlsHcl];
      const validate = spawnSync(findConsul(), ['validate', ...files], { encoding: 'utf8' });
      assert.equal(validate.status, 0, `${host}: ${validate.stdout}${validate.stderr}`);
    }
    const loaded = loadOptions(agentCommand, [], { ...readEnv(join(DEPLOY, 'hosts', 'app1', 'agent.env')), ...readEnv(join(dir, 's', 'app1', 'agent-secrets.env')) });
    assert.ok(loaded.kind === 'config' && loaded.values.consulToken === secrets.hosts.app1!.sempreAgent!.secretId);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("secrets init makes Consul's CA once and a certificate per host: server names on servers only, remade when expiring or when the role changes", () => {
  const dir = mkdtempSync(join(tmpdir(), 'sempre-tls-'));
  try {
    const hosts = [{ name: 'infra', server: true }, { name: 'app1', server: true }, { name: 'app3', server: false }];
    const first = ensureConsulTls(dir, hosts, findConsul());
    assert.equal(first.caCreated, true);
    assert.deepEqual(first.certificates.map((c) => `${c.host}: ${c.reason}`), ['infra: missing', 'app1: missing', 'app3: missing']);
    const ca = new X509Certificate(readFileSync(join(dir, 'consul-ca', 'consul-agent-ca.pem')));
    const cert = (host: string) => new X509Certificate(readFileSync(join(dir, host, 'tls', 'agent.pem')));
    assert.match(cert('infra').subjectAltName ?? '', /DNS:server\.sempre\.consul.*DNS:infra\.server\.sempre\.consul|DNS:infra\.server\.sempre\.consul.*DNS:server\.sempre\.consul/);
    assert.doesNotMatch(cert('app3').subjectAltName ?? '', /server\.sempre\.consul/, 'a client cannot pass as a server');
    for (const host of ['infra', 'app1', 'app3']) {
      assert.ok(cert(host).verify(ca.publicKey), `${host} signed by the CA`);
      assert.equal(statSync(join(dir, host, 'tls', 'agent-key.pem')).mode & 0o777, 0o600);
      assert.deepEqual(readdirSync(join(dir, host, 'tls')).sort(), ['agent-key.pem', 'agent.pem', 'ca.pem'], 'never the CA key');
    }
    assert.deepEqual(ensureConsulTls(dir, hosts, findConsul()), { caCreated: false, certificates: [] }, 'nothing made again');
    const in340Days = new Date(Date.now() + 340 * 86_400_000);
    assert.deepEqual(ensureConsulTls(dir, hosts, findConsul(), in340Days).certificates.map((c) => c.host), ['infra', 'app1', 'app3'], 'renewed within 30 days of expiry');
    const promoted = ensureConsulTls(dir, [{ name: 'app3', server: true }], findConsul());
    assert.deepEqual(promoted.certificates, [{ host: 'app3', reason: 'a client certificate on a server' }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sempre-install-app refuses a version that is not one, before touching anything', () => {
  const script = join(DEPLOY, 'bin', 'sempre-install-app');
  assert.equal(spawnSync('sh', ['-n', script]).status, 0, 'valid sh');
  const bad = spawnSync(script, ['1.0;reboot'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /VERSION must be letters, digits/);
});

test('the keepalived template renders for both balancer hosts and passes keepalived --config-test; the hooks are valid sh', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sempre-keepalived-'));
  // keepalived checks the interface exists and is not loopback: any of this machine's will do.
  const nic = readdirSync('/sys/class/net').find((n) => n !== 'lo') ?? 'eth0';
  try {
    for (const [name, self, peer, priority] of [['infra', '10.0.1.5', '10.0.1.6', 150], ['app1', '10.0.1.6', '10.0.1.5', 100]] as const) {
      const text = renderKeepalivedConf({ name, selfIp: self, peerIp: peer, priority, vip: '10.0.1.100', interface: nic, checkUrl: 'http://127.0.0.1:8081/healthz' });
      assert.doesNotMatch(text, /@[A-Z_]+@/, 'every field filled');
      assert.match(text, /nopreempt/);
      assert.match(text, new RegExp(`unicast_peer \\{\\s+${peer.replace(/\./g, '\\.')}`));
      const file = join(dir, `${name}.conf`);
      writeFileSync(file, text);
      const check = spawnSync('keepalived', ['--config-test', '--use-file', file], { encoding: 'utf8' });
      assert.equal(check.status, 0, `${name}: ${check.stdout}${check.stderr}`);
    }
    for (const script of ['check-balancer', 'notify-eip', 'drop-stale-connections', 'eip-log.sh']) assert.equal(spawnSync('sh', ['-n', join(DEPLOY, 'keepalived', script)]).status, 0, script);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('notify-eip without an allocation ID only logs the transition, and never calls AWS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sempre-eip-'));
  try {
    const log = join(dir, 'eip.log');
    // A PATH of only the tools the hook needs to log, and an aws and a curl
    // that write down that they were called (the real ones are on this machine).
    const bin = join(dir, 'bin');
    const called = join(dir, 'called');
    mkdirSync(bin);
    for (const tool of ['dirname', 'readlink', 'logger', 'date']) {
      const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      assert.ok(found, `${tool} is installed`);
      symlinkSync(found, join(bin, tool));
    }
    for (const tool of ['aws', 'curl']) {
      writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> '${called}'\nexit 1\n`);
      chmodSync(join(bin, tool), 0o755);
    }
    const run = spawnSync(join(DEPLOY, 'keepalived', 'notify-eip'), ['INSTANCE', 'sempre_front', 'MASTER', '150'], { encoding: 'utf8', env: { PATH: bin, SEMPRE_EIP_LOG: log } });
    assert.equal(run.status, 0, run.stderr);
    assert.match(readFileSync(log, 'utf8'), /VRRP state MASTER\n.*no SEMPRE_EIP_ALLOCATION_ID: not moving an Elastic IP/);
    assert.equal(existsSync(called) ? readFileSync(called, 'utf8') : '', '', 'neither aws nor curl was run');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
