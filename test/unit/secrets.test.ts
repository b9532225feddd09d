import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { consulTlsHcl } from '../../ops/consul-tls.ts';
import { consulDialect, CURRENT_CONSUL } from '../../ops/consul-version.ts';
import { aclItems, consulSecretsHcl, planSecrets, readSecrets, SecretsError, writeSecretFiles } from '../../ops/secrets.ts';

const roles = { services: ['web'], servers: ['infra', 'app1', 'app2'], apps: ['app1', 'app2'], balancers: ['infra'] };

/** An agent's rules: its service, its own maintenance flag, and healing (sessions on its node, its own heal-lock key, the others' read, its own report). */
function agentRules(service: string, id: string, node: string): string {
  return [
    `service "${service}" { policy = "write" }`, `key "sempre/maintenance/${service}/${id}" { policy = "read" }`,
    `session "${node}" { policy = "write" }`, `key_prefix "sempre/heal-lock/${service}/" { policy = "read" }`,
    `key "sempre/heal-lock/${service}/${id}" { policy = "write" }`, `key "sempre/heal-report/${service}/${id}" { policy = "write" }`, '',
  ].join('\n');
}

test('each role gets its own token; only servers see the management token', () => {
  const secrets = planSecrets(undefined, roles);
  assert.equal(Buffer.from(secrets.gossipKey, 'base64').length, 32);
  const all = [secrets.management, secrets.dns, ...Object.values(secrets.hosts).flatMap((h) => [h.consulAgent, h.sempreAgent, h.sempreBalancer].filter(Boolean))];
  assert.equal(new Set(all.map((t) => t!.secretId)).size, all.length, 'no token is shared');
  assert.ok(secrets.hosts.app1!.sempreAgent && !secrets.hosts.app1!.sempreBalancer);
  assert.ok(secrets.hosts.infra!.sempreBalancer && !secrets.hosts.infra!.sempreAgent);
  assert.match(consulSecretsHcl(secrets, 'app1'), new RegExp(`^    initial_management = "${secrets.management.secretId}"$`, 'm'));
  const client = planSecrets(secrets, { ...roles, apps: ['app1', 'app2', 'app3'] });
  assert.doesNotMatch(consulSecretsHcl(client, 'app3'), /master|initial_management/, 'a Consul client never holds the management token');
});

test("policies: an agent may write its service and read only its own flag; the balancer reads", () => {
  const items = aclItems(planSecrets(undefined, roles));
  const rules = (name: string) => items.find((i) => i.policy.name === name)!.policy.rules;
  assert.equal(rules('sempre-agent-app1'), agentRules('web', 'app1', 'app1'));
  assert.match(rules('sempre-balancer'), /service "web" \{ policy = "read" \}/);
  assert.deepEqual(rules('sempre-balancer').split('\n').filter((l) => l.includes('"write"')), ['key_prefix "sempre/maintenance/web/" { policy = "write" }', 'key "sempre/history/web" { policy = "write" }'], 'its only writes are the maintenance flags and its service\'s history');
  assert.match(rules('consul-agent-app2'), /^node "app2" \{ policy = "write" \}/);
});

test('init again adds a host and changes no existing secret; files are private', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sempre-secrets-')), 'secrets');
  try {
    const first = planSecrets(undefined, roles);
    writeSecretFiles(dir, first);
    const again = planSecrets(readSecrets(dir), { ...roles, apps: ['app1', 'app2', 'app3'] });
    writeSecretFiles(dir, again);
    const reread = readSecrets(dir)!;
    assert.equal(reread.gossipKey, first.gossipKey);
    assert.deepEqual(reread.hosts.app1, first.hosts.app1);
    assert.ok(reread.hosts.app3?.sempreAgent && !reread.hosts.app3.server);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const file of ['secrets.json', 'app1/consul-secrets.hcl', 'app1/agent-secrets.env', 'infra/balancer-secrets.env']) assert.equal(statSync(join(dir, file)).mode & 0o777, 0o600, file);
    assert.match(readFileSync(join(dir, 'infra/balancer-secrets.env'), 'utf8'), /^CONSUL_HTTP_TOKEN=[0-9a-f-]{36}\nSEMPRE_ADMIN_TOKEN=\S{20,}\n/m);
  } finally {
    rmSync(dirname(dir), { recursive: true, force: true });
  }
});

test('both balancers of a pair get the same sticky-session key, kept across init', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sempre-secrets-')), 'secrets');
  try {
    const pair = { ...roles, balancers: ['infra', 'app1'] };
    writeSecretFiles(dir, planSecrets(undefined, pair));
    writeSecretFiles(dir, planSecrets(readSecrets(dir), pair));
    const keyOf = (host: string) => /^SEMPRE_STICKY_SECRET=(\S{40,})$/m.exec(readFileSync(join(dir, host, 'balancer-secrets.env'), 'utf8'))?.[1];
    assert.ok(keyOf('infra'), 'infra has a key');
    assert.equal(keyOf('app1'), keyOf('infra'));
    assert.equal(readSecrets(dir)!.stickySecret, keyOf('infra'));
  } finally {
    rmSync(dirname(dir), { recursive: true, force: true });
  }
});

test('a second service: an agent token per app host for it, its own files, and a balancer that reads both', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sempre-secrets-')), 'secrets');
  try {
    const first = planSecrets(undefined, roles);
    writeSecretFiles(dir, first);
    const both = planSecrets(readSecrets(dir), { ...roles, services: ['web', 'api'] });
    writeSecretFiles(dir, both);
    const reread = readSecrets(dir)!;
    assert.deepEqual(reread.hosts.app1!.sempreAgent, first.hosts.app1!.sempreAgent, "web's token on app1 is unchanged");
    assert.ok(reread.hosts.app1!.serviceAgents?.api && !reread.hosts.infra!.serviceAgents, 'api agents on the app hosts only');
    const apiToken = /^CONSUL_HTTP_TOKEN=(\S+)$/m.exec(readFileSync(join(dir, 'app1/agent-api-secrets.env'), 'utf8'))?.[1];
    assert.equal(apiToken, reread.hosts.app1!.serviceAgents!.api!.secretId);
    assert.equal(statSync(join(dir, 'app1/agent-api-secrets.env')).mode & 0o777, 0o600);
    const rules = (name: string) => aclItems(reread).find((i) => i.policy.name === name)?.policy.rules;
    assert.equal(rules('sempre-agent-api-app1'), agentRules('api', 'api-app1', 'app1'));
    assert.equal(rules('sempre-agent-app1'), agentRules('web', 'app1', 'app1'), "web's policy is as before");
    assert.equal(rules('sempre-balancer'), [
      'service "web" { policy = "read" }', 'service "api" { policy = "read" }', 'node_prefix "" { policy = "read" }',
      'key_prefix "sempre/maintenance/web/" { policy = "write" }', 'key_prefix "sempre/maintenance/api/" { policy = "write" }',
      'key_prefix "sempre/heal-report/web/" { policy = "read" }', 'key_prefix "sempre/heal-report/api/" { policy = "read" }',
      'key "sempre/history/web" { policy = "write" }', 'key "sempre/history/api" { policy = "write" }', '',
    ].join('\n'));
    // Init again with only web keeps api: services are only added.
    const again = planSecrets(reread, { ...roles, apps: ['app1', 'app2', 'app3'] });
    assert.deepEqual(again.moreServices, ['api']);
    assert.ok(again.hosts.app3!.serviceAgents?.api, 'a new app host gets the api token too');
    assert.deepEqual(again.hosts.app1!.serviceAgents, reread.hosts.app1!.serviceAgents);
    assert.deepEqual(planSecrets(again, { ...roles, services: ['api'] }).moreServices, ['api'], 'naming only api is fine: web stays first');
  } finally {
    rmSync(dirname(dir), { recursive: true, force: true });
  }
});

test('a service added later reaches the app hosts of earlier runs too, and two agents never share a policy', () => {
  // app3 joined first (runbook section 7); then the API is added naming only the default apps.
  const withApp3 = planSecrets(undefined, { ...roles, apps: ['app1', 'app2', 'app3'] });
  const both = planSecrets(withApp3, { ...roles, services: ['web', 'api'] });
  assert.ok(both.hosts.app3!.serviceAgents?.api, 'app3 gets its api token without being named again');
  assert.ok(aclItems(both).some((i) => i.policy.name === 'sempre-agent-api-app3'));
  // A host named api-app1 beside service api on app1: both agents' policies would be sempre-agent-api-app1.
  assert.throws(() => planSecrets(undefined, { ...roles, services: ['web', 'api'], apps: ['app1', 'api-app1'] }), /secrets\.hosts: two agents would share the policy sempre-agent-api-app1/);
});

test('init with no change keeps every file as it was', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sempre-secrets-')), 'secrets');
  try {
    writeSecretFiles(dir, planSecrets(undefined, { ...roles, services: ['web', 'api'] }));
    const before = readFileSync(join(dir, 'secrets.json'), 'utf8');
    writeSecretFiles(dir, planSecrets(readSecrets(dir), { ...roles, services: ['web', 'api'] }));
    assert.equal(readFileSync(join(dir, 'secrets.json'), 'utf8'), before);
  } finally {
    rmSync(dirname(dir), { recursive: true, force: true });
  }
});

test('a bad host name or another service is refused, naming the field', () => {
  assert.throws(() => planSecrets(undefined, { ...roles, apps: ['App 1'] }), (e: unknown) => e instanceof SecretsError && /secrets\.hosts: "App 1"/.test(e.message));
  assert.throws(() => planSecrets(planSecrets(undefined, roles), { ...roles, services: ['api'] }), /secrets\.service: the secrets in this directory are for web, not api; is --dir right\? To add a service, name one they have too: --service web,api/);
  assert.throws(() => planSecrets(undefined, { ...roles, services: ['web', 'a/b'] }), /secrets\.service: "a\/b" is not a Consul service name/);
});


test("Consul's renamed keys follow the release: master before 1.11, the tls stanza from 1.12", () => {
  assert.deepEqual(consulDialect('1.8.7'), { version: '1.8.7', initialManagementKey: 'master', tlsStanza: false });
  assert.deepEqual(consulDialect('v1.11.4'), { version: '1.11.4', initialManagementKey: 'initial_management', tlsStanza: false });
  assert.deepEqual(consulDialect('1.12.0'), { version: '1.12.0', initialManagementKey: 'initial_management', tlsStanza: true });
  assert.deepEqual(consulDialect(CURRENT_CONSUL), { version: CURRENT_CONSUL, initialManagementKey: 'initial_management', tlsStanza: true });
  assert.throws(() => consulDialect('1.7.2'), /consul\.version: sempre needs Consul 1\.8 or newer/);
  assert.throws(() => consulDialect('latest'), /consul\.version: expected a release like 1\.8\.7/);
});

test('secrets files are written for the Consul release asked for, else the one in the secrets file; older files were for 1.8.7', () => {
  const fresh = planSecrets(undefined, roles);
  assert.equal(fresh.consulVersion, CURRENT_CONSUL);
  const lab = planSecrets(undefined, roles, '1.8.7');
  assert.match(consulSecretsHcl(lab, 'infra'), new RegExp(`^    master  = "${lab.management.secretId}"$`, 'm'));
  assert.equal(planSecrets(lab, roles).consulVersion, '1.8.7', 'kept on the next init');
  assert.equal(planSecrets(lab, roles, '2.0.3').consulVersion, '2.0.3', 'changed when asked');
  const { consulVersion: _dropped, ...older } = fresh;
  assert.equal(planSecrets(older, roles).consulVersion, '1.8.7', 'a file from before versioned Consul files');
});

test('tls.hcl verifies incoming and outgoing RPC and server host names, in the form each release reads', () => {
  const old = consulTlsHcl(consulDialect('1.8.7'), 'app1', '/x/tls');
  for (const line of ['ca_file                = "/x/tls/ca.pem"', 'cert_file              = "/x/tls/agent.pem"', 'key_file               = "/x/tls/agent-key.pem"',
    'verify_incoming_rpc    = true', 'verify_outgoing        = true', 'verify_server_hostname = true']) assert.ok(old.split('\n').includes(line), line);
  assert.doesNotMatch(old, /^tls \{/m);
  const current = consulTlsHcl(consulDialect(CURRENT_CONSUL), 'app1', '/x/tls');
  assert.match(current, /^tls \{\n  defaults \{\n    ca_file   = "\/x\/tls\/ca\.pem"\n    cert_file = "\/x\/tls\/agent\.pem"\n    key_file  = "\/x\/tls\/agent-key\.pem"\n  \}\n  internal_rpc \{\n    verify_incoming        = true\n    verify_outgoing        = true\n    verify_server_hostname = true\n  \}\n\}$/m);
  assert.doesNotMatch(current, /^verify_/m, 'no deprecated top-level key');
});
