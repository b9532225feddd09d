// `./sempre secrets init|apply`: the gossip key, the ACL tokens and the TLS
// certificates for the three servers (and any added later).
import '../shared/closed-stdout.ts';
import { parseArgs } from 'node:util';
import { findConsul } from '../lab/consul-binary.ts';
import { ensureConsulTls } from './consul-tls.ts';
import { CURRENT_CONSUL } from './consul-version.ts';
import { applyAcls, planSecrets, readSecrets, SecretsError, servicesOf, writeSecretFiles } from './secrets.ts';

const HELP = `Usage: ./sempre secrets init  [--dir DIR] [--consul-version V] [--service NAME[,NAME]] [--servers A,B,C] [--apps A,B] [--balancers A]
       ./sempre secrets apply --consul URL [--dir DIR] [--json]

Generates every secret the servers need, on your machine, into DIR
(default ./secrets, which git ignores; keep it somewhere safe):

  init    the Consul gossip key, the initial management token, one
          least-privilege token per role and host, and a CA with one
          certificate per host for Consul's RPC (made with \`consul tls\`),
          with the files to copy:
            DIR/<host>/consul-secrets.hcl    → /etc/consul.d/secrets.hcl   (0600, owner consul)
            DIR/<host>/consul-tls.hcl        → /etc/consul.d/tls.hcl
            DIR/<host>/tls/*.pem             → /etc/consul.d/tls/           (agent-key.pem 0600)
            DIR/<host>/agent-secrets.env     → /etc/sempre/agent-secrets.env    (app hosts)
            DIR/<host>/agent-<svc>-secrets.env → /etc/sempre/agent-<svc>-secrets.env
                                             (app hosts, each service after the first)
            DIR/<host>/balancer-secrets.env  → /etc/sempre/balancer-secrets.env (balancer hosts)
          The CA's key stays in DIR/consul-ca/: never copy it to a host.
          Run it again with more hosts to add them: existing secrets never
          change, except certificates that expire within 30 days, which are
          made again (copy them, then systemctl reload consul).
  apply   once the Consul servers are up with those files: creates the ACL
          policies and tokens in Consul (safe to run again).

Policies (least privilege):
  consul-agent-<host>   node "<host>" write, services read       (acl.tokens.agent)
  dns-read              nodes, services, queries read             (acl.tokens.default: DNS)
  sempre-agent-<host>   service "<service>" write, its own maintenance key read;
                        to heal a hung app: sessions on <host>, its own heal-lock
                        and heal-report keys write, the service's heal locks read
  sempre-agent-<svc>-<host>
                        the same for each service after the first, whose
                        instance on <host> is <svc>-<host>
  sempre-balancer       each service read, nodes read, their maintenance keys write,
                        their heal reports read

Options:
  --dir DIR          where the secrets live (default: secrets)
  --consul-version V the Consul release on the servers, for its key names (default: the
                     one in DIR's secrets, else ${CURRENT_CONSUL}, the release the runbook installs;
                     e.g. 1.8.7 for the lab's Consul)
  --service LIST     the services the apps register (default: web, or the ones DIR's
                     secrets have). Each app host gets an agent token per service.
                     The first service of DIR's secrets names its instances by host
                     (agent --id app1), every later one <svc>-<host> (--id api-app1).
                     Services are only added, never removed
  --servers LIST     hosts running a Consul server (default: infra,app1,app2)
  --apps LIST        hosts running the app and its agent (default: app1,app2)
  --balancers LIST   hosts running the balancer (default: infra)
  --consul URL       a Consul agent's HTTP address, for apply (e.g. http://127.0.0.1:8500 on a server)
  --json             print the result as JSON
  -h, --help         this help

Examples:
  ./sempre secrets init
  ./sempre secrets init --apps app1,app2,app3 --servers infra,app1,app2   # a fourth server joins
  ./sempre secrets init --service web,api   # a second service on the app hosts (runbook, section 10)
  ssh -L 18500:127.0.0.1:8500 infra   # Consul listens on each server's loopback only
  ./sempre secrets apply --consul http://127.0.0.1:18500
`;

const say = (line: string) => process.stdout.write(`${line}\n`);
const fail = (message: string, code = 2): never => {
  process.stderr.write(`secrets: ${message}\n`);
  process.exit(code);
};
const list = (value: string | undefined, fallback: string) => (value ?? fallback).split(',').map((s) => s.trim()).filter(Boolean);

const [command, ...rest] = process.argv.slice(2);
let values: Record<string, string | boolean | undefined>;
try {
  values = parseArgs({
    args: rest,
    options: {
      dir: { type: 'string' }, 'consul-version': { type: 'string' }, service: { type: 'string' }, servers: { type: 'string' }, apps: { type: 'string' }, balancers: { type: 'string' },
      consul: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (error) {
  fail(`${(error as Error).message.split('\n')[0]} (see --help)`);
  throw error;
}
if (values.help || !command || command === 'help' || command === '--help' || command === '-h') {
  process.stdout.write(HELP);
  process.exit(command || values.help ? 0 : 2);
}
const dir = String(values.dir ?? 'secrets');

try {
  if (command === 'init') {
    const existing = readSecrets(dir);
    const services = typeof values.service === 'string' ? list(values.service, '') : existing ? servicesOf(existing) : ['web'];
    const roles = { services, servers: list(values.servers as string | undefined, 'infra,app1,app2'), apps: list(values.apps as string | undefined, 'app1,app2'), balancers: list(values.balancers as string | undefined, 'infra') };
    if (roles.servers.length % 2 === 0) fail(`secrets.servers: use an odd number of Consul servers (got ${roles.servers.length}): an even number adds no fault tolerance`);
    let secrets: ReturnType<typeof planSecrets>;
    try {
      secrets = planSecrets(existing, roles, values['consul-version'] as string | undefined);
    } catch (error) {
      // A bad name or service is the caller's: a usage error, like a bad option.
      throw error instanceof SecretsError ? fail(error.message) : error;
    }
    const files = writeSecretFiles(dir, secrets);
    const tls = ensureConsulTls(dir, Object.entries(secrets.hosts).map(([name, host]) => ({ name, server: host.server })), findConsul());
    const planned = servicesOf(secrets);
    if (values.json) say(JSON.stringify({ dir, consulVersion: secrets.consulVersion, services: planned, hosts: Object.keys(secrets.hosts), files, tls }, null, 2));
    else {
      say(`${existing ? 'updated' : 'created'} ${dir}/ (mode 0700) for Consul ${secrets.consulVersion} and ${planned.length > 1 ? 'services' : 'service'} ${planned.join(', ')}: gossip key, management token, ${Object.keys(secrets.hosts).length} hosts${tls.caCreated ? ', a CA for Consul\'s RPC' : ''}`);
      for (const [name, host] of Object.entries(secrets.hosts)) say(`  ${name.padEnd(8)} ${[host.server && 'consul server', !host.server && 'consul client', host.app && (host.serviceAgents ? `apps + agents of ${planned.join(', ')}` : 'app + agent'), host.balancer && 'balancer'].filter(Boolean).join(', ')}`);
      for (const made of tls.certificates) say(`  TLS certificate for ${made.host}: made (${made.reason})`);
      if (existing && !values['consul-version']) say(`Consul's files are for Consul ${secrets.consulVersion} (from ${dir}/secrets.json); once the servers run another release: --consul-version VERSION`);
      say(`\nOn each host copy ${dir}/<host>/consul-secrets.hcl to /etc/consul.d/secrets.hcl, consul-tls.hcl to /etc/consul.d/tls.hcl,`);
      say(`${dir}/<host>/tls/ to /etc/consul.d/tls/ and the .env files to /etc/sempre/ (docs/runbook.md, section 2);`);
      say(`start Consul on every server, then: ./sempre secrets apply --consul http://127.0.0.1:8500 --dir ${dir}`);
    }
  } else if (command === 'apply') {
    if (typeof values.consul !== 'string') fail('secrets.consul: apply needs --consul URL (a Consul agent with the secrets.hcl from these secrets)');
    const secrets = readSecrets(dir) ?? fail(`secrets.dir: no secrets in ${dir}/: run \`./sempre secrets init --dir ${dir}\` first`);
    const results = await applyAcls(String(values.consul), secrets);
    if (values.json) say(JSON.stringify(results, null, 2));
    else for (const r of results) say(`  ${r.action.padEnd(8)} policy ${r.policy.padEnd(22)} token for ${r.token}`);
  } else fail(`unknown command ${command} (init or apply; see --help)`);
} catch (error) {
  fail(error instanceof Error ? error.message : String(error), 1);
}
