// Every secret the three servers need, generated on the operator's machine
// and never committed: the gossip encryption key, the initial management
// token, one least-privilege token per role and host, and (ops/consul-tls.ts)
// the certificates for Consul's RPC. Consul's files are written for the
// Consul release the servers run (ops/consul-version.ts). Accessor and
// secret IDs are chosen here, so each host's files can be written before
// Consul runs; `applyAcls` then creates the policies and tokens in Consul
// with exactly those IDs (and is safe to run again).
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { balancerPolicy, consulAgentPolicy, dnsPolicy, sempreAgentPolicy, type PolicySpec } from './acl-policies.ts';
import { assignments, consulTlsHcl } from './consul-tls.ts';
import { consulDialect, CURRENT_CONSUL, type ConsulDialect } from './consul-version.ts';

export interface Token {
  accessorId: string;
  secretId: string;
}

export interface HostSecrets {
  server: boolean;
  app: boolean;
  balancer: boolean;
  /** The host's Consul agent (acl.tokens.agent). */
  consulAgent: Token;
  /** sempre-agent's token for the first service (instance ID: the host's name), on app hosts. */
  sempreAgent?: Token;
  /** Tokens of the agents for the other services on an app host, by service (instance ID `<service>-<host>`). */
  serviceAgents?: Record<string, Token>;
  /** The balancer's Consul token and its dashboard control token, on balancer hosts. */
  sempreBalancer?: Token;
  adminToken?: string;
}

export interface ClusterSecrets {
  version: 1;
  /** The first service: its agents' instance IDs are the hosts' names. */
  service: string;
  /** The services after the first (a balancer with --routing routes fronts them all). */
  moreServices?: string[];
  gossipKey: string;
  management: Token;
  dns: Token;
  /** Key of the sticky-session cookie's HMAC: one for every balancer, so a pair reads each other's cookies. */
  stickySecret?: string;
  /** The Consul release the servers run: Consul's files use its key names. */
  consulVersion?: string;
  hosts: Record<string, HostSecrets>;
}

export interface Roles {
  /** Every service the app hosts run (each app host gets an agent token for each). */
  services: readonly string[];
  servers: readonly string[];
  apps: readonly string[];
  balancers: readonly string[];
}

export class SecretsError extends Error {}

const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
// Letters, digits and dashes only, unlike the agent's --service (shared/config/values.ts
// name(), which also takes '.' and '_'): the name goes into ACL policy names,
// which refuse '.', and into the .env file names.
const SERVICE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/i;

function token(): Token {
  return { accessorId: randomUUID(), secretId: randomUUID() };
}

/** What the runbook installed before sempre wrote files per Consul release: older secrets files were for it. */
const CONSUL_BEFORE_VERSIONED_FILES = '1.8.7';

/** Adds what is missing for these roles; never changes a secret that exists. */
export function planSecrets(existing: ClusterSecrets | undefined, roles: Roles, consulVersion?: string): ClusterSecrets {
  for (const host of [...roles.servers, ...roles.apps, ...roles.balancers]) {
    if (!HOST_NAME.test(host)) throw new SecretsError(`secrets.hosts: "${host}" is not a valid Consul node name (lower-case letters, digits, dashes)`);
  }
  for (const service of roles.services) {
    if (!SERVICE_NAME.test(service)) throw new SecretsError(`secrets.service: ${JSON.stringify(service)} is not a Consul service name (letters, digits, dashes)`);
  }
  if (roles.services.length === 0) throw new SecretsError('secrets.service: name at least one service');
  // Naming none of the existing services is more likely a wrong --dir than a new service.
  if (existing && !roles.services.some((name) => servicesOf(existing).includes(name))) {
    throw new SecretsError(`secrets.service: the secrets in this directory are for ${servicesOf(existing).join(', ')}, not ${roles.services.join(', ')}; is --dir right? To add a service, name one they have too: --service ${[existing.service, ...roles.services].join(',')}`);
  }
  const secrets: ClusterSecrets = existing ?? {
    version: 1,
    service: roles.services[0]!,
    // Consul's gossip key: 32 random bytes, base64 (what `consul keygen` prints).
    gossipKey: randomBytes(32).toString('base64'),
    management: token(),
    dns: token(),
    hosts: {},
  };
  // Added after the first release: older secrets files get one now.
  secrets.stickySecret ??= randomBytes(32).toString('base64url');
  // Services are only ever added: an agent token already on a host stays valid.
  const more = [...new Set([...(secrets.moreServices ?? []), ...roles.services])].filter((name) => name !== secrets.service);
  if (more.length > 0) secrets.moreServices = more;
  secrets.consulVersion = consulDialect(consulVersion ?? secrets.consulVersion ?? (existing ? CONSUL_BEFORE_VERSIONED_FILES : CURRENT_CONSUL)).version;
  for (const name of new Set([...roles.servers, ...roles.apps, ...roles.balancers])) {
    const host = (secrets.hosts[name] ??= { server: false, app: false, balancer: false, consulAgent: token() });
    host.server ||= roles.servers.includes(name);
    host.app ||= roles.apps.includes(name);
    host.balancer ||= roles.balancers.includes(name);
    if (host.balancer) {
      host.sempreBalancer ??= token();
      host.adminToken ??= randomBytes(18).toString('base64url');
    }
  }
  // Every app host, also those of earlier runs not named in this one, runs every service.
  for (const host of Object.values(secrets.hosts)) {
    if (!host.app) continue;
    host.sempreAgent ??= token();
    for (const service of more) (host.serviceAgents ??= {})[service] ??= token();
  }
  // `sempre-agent-api-app1` is both the first service's agent on a host named
  // api-app1 and api's agent on app1: one policy would overwrite the other.
  // (The balancers of a pair do share theirs, with the same rules.)
  const rulesByPolicy = new Map<string, string>();
  for (const { policy } of aclItems(secrets)) {
    const known = rulesByPolicy.get(policy.name);
    if (known !== undefined && known !== policy.rules) throw new SecretsError(`secrets.hosts: two agents would share the policy ${policy.name} (a host named like <service>-<host>); rename the host or the service`);
    rulesByPolicy.set(policy.name, policy.rules);
  }
  return secrets;
}

export function readSecrets(dir: string): ClusterSecrets | undefined {
  const file = join(dir, 'secrets.json');
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as ClusterSecrets;
  if (parsed.version !== 1 || typeof parsed.gossipKey !== 'string' || !parsed.hosts) throw new SecretsError(`${file} is not a sempre secrets file`);
  return parsed;
}

function writePrivate(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** The Consul release these secrets' files are written for. */
export function dialectOf(secrets: ClusterSecrets): ConsulDialect {
  return consulDialect(secrets.consulVersion ?? CONSUL_BEFORE_VERSIONED_FILES);
}

/**
 * Consul's part, /etc/consul.d/secrets.hcl on that host. Keys: encrypt
 * (https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/encryption)
 * and acl.tokens (…/configuration-file/acl): the initial management token is
 * `master` before Consul 1.11, `initial_management` since.
 */
export function consulSecretsHcl(secrets: ClusterSecrets, name: string): string {
  const host = secrets.hosts[name];
  if (!host) throw new SecretsError(`no secrets for host ${name}`);
  const dialect = dialectOf(secrets);
  return [
    `# /etc/consul.d/secrets.hcl on ${name}: generated by \`./sempre secrets init\` for Consul ${dialect.version}. Keep it 0600, owner consul.`,
    `encrypt = "${secrets.gossipKey}"`,
    'acl {',
    '  tokens {',
    ...assignments([
      // The initial management token bootstraps ACLs; only servers read it.
      ...(host.server ? [[dialect.initialManagementKey, `"${secrets.management.secretId}"`] as const] : []),
      ['agent', `"${host.consulAgent.secretId}"`],
      ['default', `"${secrets.dns.secretId}"`],
    ], '    '),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Writes secrets.json and, per host, the files to copy to it. Returns the files written. */
export function writeSecretFiles(dir: string, secrets: ClusterSecrets): string[] {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const written: string[] = [];
  const put = (file: string, text: string) => {
    writePrivate(file, text);
    written.push(file);
  };
  put(join(dir, 'secrets.json'), `${JSON.stringify(secrets, null, 2)}\n`);
  for (const [name, host] of Object.entries(secrets.hosts)) {
    const hostDir = join(dir, name);
    mkdirSync(hostDir, { recursive: true, mode: 0o700 });
    put(join(hostDir, 'consul-secrets.hcl'), consulSecretsHcl(secrets, name));
    put(join(hostDir, 'consul-tls.hcl'), consulTlsHcl(dialectOf(secrets), name));
    if (host.sempreAgent) put(join(hostDir, 'agent-secrets.env'), `# /etc/sempre/agent-secrets.env on ${name}\nCONSUL_HTTP_TOKEN=${host.sempreAgent.secretId}\n`);
    for (const [service, agent] of Object.entries(host.serviceAgents ?? {})) {
      put(join(hostDir, `agent-${service}-secrets.env`), `# /etc/sempre/agent-${service}-secrets.env on ${name}: the agent of service ${service}, instance ${serviceInstanceId(service, name)}\nCONSUL_HTTP_TOKEN=${agent.secretId}\n`);
    }
    if (host.sempreBalancer) put(join(hostDir, 'balancer-secrets.env'), `# /etc/sempre/balancer-secrets.env on ${name}\nCONSUL_HTTP_TOKEN=${host.sempreBalancer.secretId}\nSEMPRE_ADMIN_TOKEN=${host.adminToken}\nSEMPRE_STICKY_SECRET=${secrets.stickySecret ?? ''}\n`);
  }
  return written;
}

/** The instance ID an agent of a service after the first registers on an app host (its token may read only that instance's flag). */
export function serviceInstanceId(service: string, host: string): string {
  return `${service}-${host}`;
}

/** Every service of these secrets, the first first. */
export function servicesOf(secrets: ClusterSecrets): string[] {
  return [secrets.service, ...(secrets.moreServices ?? [])];
}

export interface AclItem {
  token: Token;
  policy: PolicySpec;
  description: string;
}

/** Every policy and token these secrets call for. */
export function aclItems(secrets: ClusterSecrets): AclItem[] {
  const items: AclItem[] = [{ token: secrets.dns, policy: dnsPolicy(), description: 'default token: Consul DNS' }];
  for (const [name, host] of Object.entries(secrets.hosts)) {
    items.push({ token: host.consulAgent, policy: consulAgentPolicy(name), description: `Consul agent on ${name}` });
    if (host.sempreAgent) items.push({ token: host.sempreAgent, policy: sempreAgentPolicy(secrets.service, name), description: `sempre-agent on ${name}` });
    for (const [service, agent] of Object.entries(host.serviceAgents ?? {})) {
      const id = serviceInstanceId(service, name);
      items.push({ token: agent, policy: sempreAgentPolicy(service, id, name), description: `sempre-agent of ${service} on ${name}` });
    }
    if (host.sempreBalancer) items.push({ token: host.sempreBalancer, policy: balancerPolicy(servicesOf(secrets)), description: `sempre-balancer on ${name}` });
  }
  return items;
}

/** One call to Consul's HTTP API with the management token: status, parsed JSON (when it is JSON) and text. */
export async function consulCall(base: string, management: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { 'x-consul-token': management, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

export interface ApplyResult {
  policy: string;
  token: string;
  action: 'created' | 'updated';
}

/** Creates or updates every policy and token in Consul, with the management token. */
export async function applyAcls(consulUrl: string, secrets: ClusterSecrets): Promise<ApplyResult[]> {
  const base = consulUrl.replace(/\/$/, '');
  const management = secrets.management.secretId;
  const self = await consulCall(base, management, 'GET', '/v1/acl/token/self');
  if (self.status !== 200) throw new SecretsError(`Consul at ${base} refused the management token (HTTP ${self.status}: ${self.text.trim()}): is ACL enabled and the secrets.hcl from these secrets in /etc/consul.d on its servers?`);
  // One listing each, rather than a lookup per item that Consul logs as an error when missing.
  const policies = await consulCall(base, management, 'GET', '/v1/acl/policies');
  const tokens = await consulCall(base, management, 'GET', '/v1/acl/tokens');
  if (policies.status !== 200 || tokens.status !== 200) throw new SecretsError(`listing ACLs at ${base}: HTTP ${policies.status}/${tokens.status}`);
  const policyIds = new Map((policies.json as Array<{ ID: string; Name: string }>).map((p) => [p.Name, p.ID]));
  const tokenIds = new Set((tokens.json as Array<{ AccessorID: string }>).map((t) => t.AccessorID));
  const results: ApplyResult[] = [];
  for (const item of aclItems(secrets)) {
    const policyBody = { Name: item.policy.name, Description: item.policy.description, Rules: item.policy.rules };
    const policyId = policyIds.get(item.policy.name);
    const policy = await consulCall(base, management, 'PUT', policyId ? `/v1/acl/policy/${policyId}` : '/v1/acl/policy', policyBody);
    if (policy.status !== 200) throw new SecretsError(`creating policy ${item.policy.name}: HTTP ${policy.status}: ${policy.text.trim()}`);
    const known = tokenIds.has(item.token.accessorId);
    const tokenBody = { AccessorID: item.token.accessorId, SecretID: item.token.secretId, Description: item.description, Policies: [{ Name: item.policy.name }] };
    const created = await consulCall(base, management, 'PUT', known ? `/v1/acl/token/${item.token.accessorId}` : '/v1/acl/token', tokenBody);
    if (created.status !== 200) throw new SecretsError(`creating the token for ${item.description}: HTTP ${created.status}: ${created.text.trim()}`);
    results.push({ policy: item.policy.name, token: item.description, action: known ? 'updated' : 'created' });
  }
  return results;
}
