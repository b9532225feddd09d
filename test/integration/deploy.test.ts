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
const units = readdirSync(join(DEPLOY, 'systemd')).filter((f) => f.endsWith('.service') || f.endsWith('.socket'));

function readEnv(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}

test('the systemd units pass systemd-analyze verify without a single warning', () => {
  assert.deepEqual(units.sort(), ['consul.service', 'sempre-agent.service', 'sempre-app.service', 'sempre-balancer.service', 'sempre-balancer.socket']);
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

test("infra's balancer.env passes the balancer's own validation, admin on loopback, and the socket unit listens on its port", () => {
  const loaded = loadOptions(balancerCommand, [], readEnv(join(DEPLOY, 'hosts', 'infra', 'balancer.env')));
  assert.ok(loaded.kind === 'config');
  const socketUnit = readFileSync(join(DEPLOY, 'systemd', 'sempre-balancer.socket'), 'utf8');
  assert.equal(/^ListenStream=(.*)$/m.exec(socketUnit)?.[1], `${loaded.values.host}:${loaded.values.port}`, 'sempre-balancer.socket listens where balancer.env says');
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
    assert.match(balancerUnit, /^ExecStart=.* --environment-file \/etc\/sempre\/balancer\.env/m, 'the options file is re-read at reload');
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

// The heal's one privilege (issue 20): deploy/sudoers/sempre-agent lets the
// agent's user run `systemctl restart` of the app's unit as root, and nothing else.
const SUDOERS = join(DEPLOY, 'sudoers', 'sempre-agent');
const SYSTEMCTL = '/usr/bin/systemctl';

function unitValue(text: string, key: string): string[] {
  return [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());
}

/** The rule's lines as sudo reads them, and the API's line of runbook section 10, kept as a comment in the same file. */
function sudoersRule(): { lines: string[]; apiLine: string } {
  const text = readFileSync(SUDOERS, 'utf8').split('\n');
  const lines = text.filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  const apiLine = text.map((l) => /^#\s+(\S+ ALL=.*sempre-app-api\.service)$/.exec(l)?.[1]).find(Boolean);
  assert.ok(apiLine, "the file shows the second service's line");
  return { lines, apiLine };
}

test("the heal's sudoers rule parses, names the agent unit's user and the app's unit in full, without a wildcard, and the agent unit lets sudo work", () => {
  const check = spawnSync('visudo', ['-cf', SUDOERS], { encoding: 'utf8' });
  assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  const agentUnit = readFileSync(join(DEPLOY, 'systemd', 'sempre-agent.service'), 'utf8');
  const [user] = unitValue(agentUnit, 'User');
  const execStart = unitValue(agentUnit, 'ExecStart')[0]!;
  const appUnit = /--app-unit (\S+)/.exec(execStart)?.[1];
  assert.match(execStart, /--heal true/);
  assert.equal(appUnit, 'sempre-app.service', 'the unit deploy/systemd ships, with its .service');
  assert.ok(existsSync(join(DEPLOY, 'systemd', appUnit!)));
  const { lines, apiLine } = sudoersRule();
  // One line, exactly this: no other user, host alias, runas, verb, unit or argument.
  assert.deepEqual(lines, [`${user} ALL=(root) NOPASSWD: ${SYSTEMCTL} restart ${appUnit}`]);
  assert.equal(apiLine, `${user} ALL=(root) NOPASSWD: ${SYSTEMCTL} restart sempre-app-api.service`);
  for (const line of [...lines, apiLine]) assert.doesNotMatch(line, /[*?[\]\\]|ALL\s*$|""/, 'no wildcard, no ALL command, no empty-argument form');
  for (const runbook of ['runbook.md', 'runbook.pt-BR.md']) {
    const text = readFileSync(join(PROJECT_ROOT, 'docs', runbook), 'utf8');
    assert.ok(text.includes('visudo -cf deploy/sudoers/sempre-agent') && text.includes('-m 0440 deploy/sudoers/sempre-agent /etc/sudoers.d/sempre-agent'), `${runbook}: the install step`);
    assert.ok(text.includes(apiLine), `${runbook}: the API's line`);
  }
  // Evidence under StateDirectory= (created for User=, writable under ProtectSystem=strict).
  const evidenceDir = /--evidence-dir (\S+)/.exec(execStart)?.[1];
  assert.equal(evidenceDir, '/var/lib/sempre-agent/evidence');
  assert.ok(unitValue(agentUnit, 'StateDirectory').join(' ').split(/\s+/).includes('sempre-agent/evidence'));
  // NoNewPrivileges=yes, and what implies it for a non-root User=, keeps sudo from becoming root.
  for (const key of ['NoNewPrivileges', 'SystemCallFilter', 'SystemCallArchitectures', 'RestrictAddressFamilies', 'RestrictNamespaces', 'PrivateDevices', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectClock', 'MemoryDenyWriteExecute', 'RestrictRealtime', 'RestrictSUIDSGID', 'DynamicUser', 'LockPersonality']) {
    assert.deepEqual(unitValue(agentUnit, key).filter((v) => !/^(no|false|0)$/.test(v)), [], `sempre-agent.service: ${key} would stop sudo`);
  }
  for (const key of ['PrivateTmp', 'ProtectHome']) assert.deepEqual(unitValue(agentUnit, key), ['yes'], key);
  assert.deepEqual(unitValue(agentUnit, 'ProtectSystem'), ['strict']);
  const appUnitText = readFileSync(join(DEPLOY, 'systemd', appUnit!), 'utf8');
  assert.deepEqual(unitValue(appUnitText, 'NoNewPrivileges'), ['yes'], 'the app (the same user) cannot use sudo itself');
});

const TEST_USER_PREFIX = 'sempre-sudo-';

/** Users and sudoers files of earlier runs that were killed before their finally (their PID is gone). */
function removeStaleSudoTests(): void {
  const stale = (name: string) => {
    const pid = new RegExp(`^${TEST_USER_PREFIX}(\\d+)$`).exec(name)?.[1];
    return pid !== undefined && !existsSync(`/proc/${pid}`);
  };
  for (const file of readdirSync('/etc/sudoers.d')) if (stale(file)) rmSync(join('/etc/sudoers.d', file), { force: true });
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const name = line.split(':')[0]!;
    if (stale(name)) spawnSync('userdel', [name]);
  }
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const name = line.split(':')[0]!;
    if (stale(name)) spawnSync('groupdel', [name]);
  }
}

test(
  "as the agent's user, the rule allows restarting the app's unit and nothing else (a throwaway user and /etc/sudoers.d file, always removed)",
  { skip: process.getuid?.() === 0 ? false : 'needs root: it adds a system user and a sudoers file for the length of the test' },
  () => {
    removeStaleSudoTests();
    // A system user made as runbook section 2 makes sempre, named for this process.
    const user = `${TEST_USER_PREFIX}${process.pid}`;
    const installed = join('/etc/sudoers.d', user); // no '.' in the name: sudo skips such files in sudoers.d
    const dir = mkdtempSync(join(tmpdir(), 'sempre-sudoers-'));
    const { lines, apiLine } = sudoersRule();
    const agentUser = lines[0]!.split(' ')[0]!;
    // The shipped rule and the API's line, with the test's user in place of the unit's.
    const rule = `${[...lines, apiLine].map((l) => l.replace(new RegExp(`^${agentUser} `), `${user} `)).join('\n')}\n`;
    const allowed = [`${SYSTEMCTL} restart sempre-app.service`, `${SYSTEMCTL} restart sempre-app-api.service`];
    try {
      const add = spawnSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', user], { encoding: 'utf8' });
      assert.equal(add.status, 0, add.stderr);
      // Installed as the runbook installs it: visudo -cf first, then mode 0440.
      writeFileSync(join(dir, 'rule'), rule);
      const check = spawnSync('visudo', ['-cf', join(dir, 'rule')], { encoding: 'utf8' });
      assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
      assert.equal(spawnSync('install', ['-o', 'root', '-g', 'root', '-m', '0440', join(dir, 'rule'), installed]).status, 0);

      // What sudo itself says the user may run: exactly the two restarts.
      const list = spawnSync('sudo', ['-l', '-U', user], { encoding: 'utf8' });
      assert.equal(list.status, 0, list.stderr);
      const may = list.stdout.split(/may run the following commands[^\n]*\n/)[1] ?? '';
      assert.deepEqual(may.split('\n').map((l) => l.trim()).filter(Boolean), allowed.map((c) => `(root) NOPASSWD: ${c}`), list.stdout);

      // sudo -l -U USER COMMAND ARGS…: 0 if that command line is allowed, 1 if not, nothing run.
      const mayRun = (...command: string[]) => spawnSync('sudo', ['-l', '-U', user, ...command], { encoding: 'utf8' }).status;
      for (const command of allowed) assert.equal(mayRun(...command.split(' ')), 0, command);
      const refused = [
        [SYSTEMCTL, 'restart', 'OTHER.service'],
        [SYSTEMCTL, 'restart', 'sempre-agent.service'],
        [SYSTEMCTL, 'restart', 'consul.service'],
        [SYSTEMCTL, 'stop', 'sempre-app.service'],
        [SYSTEMCTL, 'kill', 'sempre-app.service'],
        [SYSTEMCTL, 'edit', 'sempre-app.service'],
        [SYSTEMCTL, 'restart', 'sempre-app'],
        [SYSTEMCTL, 'restart', 'sempre-app.service;', 'reboot'],
        [SYSTEMCTL, 'restart', 'sempre-app.service; reboot'],
        [SYSTEMCTL, 'restart', 'sempre-app.service', 'consul.service'],
        [SYSTEMCTL, 'restart', 'sempre-app.service', '--host', 'root@elsewhere'],
        [SYSTEMCTL, '--no-block', 'restart', 'sempre-app.service'],
        [SYSTEMCTL, 'restart', 'sempre-app.service', 'sempre-app-api.service'],
        [SYSTEMCTL, 'daemon-reload'],
        [SYSTEMCTL, 'reboot'],
        [SYSTEMCTL],
        ['/bin/sh', '-c', `${SYSTEMCTL} restart sempre-app.service`],
        ['/usr/bin/id'],
      ];
      for (const command of refused) assert.equal(mayRun(...command), 1, `refused: ${command.join(' ')}`);

      // Run for real as that user, the way the unit runs the agent (User=, Group=,
      // no NoNewPrivileges, a read-only file system as with ProtectSystem=strict).
      const asUser = (noNewPrivs: boolean, ...command: string[]) => {
        const setpriv = ['setpriv', ...(noNewPrivs ? ['--no-new-privs'] : []), `--reuid=${user}`, `--regid=${user}`, '--init-groups', '--', 'sudo', '-n', ...command];
        const readOnly = 'for m in $(findmnt -rn -o TARGET | grep -Ev "^/(dev|proc|sys)(/|$)"); do mount -o remount,bind,ro "$m" 2>/dev/null; done; [ -w /var/lib ] && exit 99; exec "$@"';
        return spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', readOnly, 'sh', ...setpriv], { encoding: 'utf8' });
      };
      const refusedRun = asUser(false, SYSTEMCTL, 'stop', 'sempre-app.service');
      assert.equal(refusedRun.status, 1);
      assert.match(refusedRun.stderr, /sudo: a password is required/, 'refused without running anything');
      assert.match(asUser(false, SYSTEMCTL, 'restart', 'OTHER.service').stderr, /sudo: a password is required/);
      const withNnp = asUser(true, ...allowed[0]!.split(' '));
      assert.notEqual(withNnp.status, 0);
      assert.match(withNnp.stderr, /no new privileges/, 'NoNewPrivileges=yes would stop the heal: why the agent unit has none');
      if (readFileSync('/proc/1/comm', 'utf8').trim() !== 'systemd') {
        // No systemd here to restart anything: getting to systemctl's own error shows sudo let it run.
        const run = asUser(false, ...allowed[0]!.split(' '));
        assert.notEqual(run.status, 99, 'the file system was read-only');
        assert.doesNotMatch(run.stderr, /sudo:/, run.stderr);
        assert.match(run.stderr, /System has not been booted with systemd|Failed to connect to bus/, run.stderr);
      }
    } finally {
      rmSync(installed, { force: true });
      rmSync(dir, { recursive: true, force: true });
      spawnSync('userdel', [user]);
      if (spawnSync('getent', ['group', user]).status === 0) spawnSync('groupdel', [user]);
    }
    assert.notEqual(spawnSync('getent', ['passwd', user]).status, 0, 'the user is gone');
    assert.notEqual(spawnSync('getent', ['group', user]).status, 0, 'its group is gone');
    assert.ok(!existsSync(installed), 'the sudoers file is gone');
  },
);
