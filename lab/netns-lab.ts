// The multi-host lab: each host (infra, app1, app2, client) in its own
// network namespace with its own address on a private bridge, as on real
// servers. As in deploy/, infra, app1 and app2 each run a Consul server
// (ACLs default-deny, gossip encrypted, RPC under TLS with verified
// certificates, the tokens and certificates from `sempre secrets`);
// infra runs the balancer under the socket keeper (a .socket unit and
// Restart=always: bin/sempre-socket-keeper holds its listening sockets, so a
// balancer that dies is started again and refuses no connection meanwhile);
// each app host runs its app and its agent; app3 and later run a Consul client. Each app runs under the lab's restarter (systemd's
// Restart=always: lab/restarter.ts) and its agent heals it (--heal true with the
// app's PID file, log and an evidence folder). Needs root. Everything it creates is recorded in .run/lab/state.json, and `down`
// removes it all: processes, namespaces, the bridge, nftables rules.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureConsulTls } from '../ops/consul-tls.ts';
import { installedConsulVersion } from '../ops/consul-version.ts';
import { applyAcls, planSecrets, readSecrets, writeSecretFiles, type ClusterSecrets } from '../ops/secrets.ts';
import { BALANCER_NODE_FLAGS } from './balancer-node-flags.ts';
import { findConsul, PROJECT_ROOT } from './consul-binary.ts';
import { writeLabConsulConfig } from './consul-config.ts';
import { holdRestarts, releaseRestarts, restartedCommand, restartFiles, targetPid, type Restarted } from './app-restarts.ts';
import { keepalivedCommand } from './keepalived.ts';
import { isAliveMember, passingInstanceIds } from './consul-health.ts';
import { waitFor } from './processes.ts';

/** A /24 kept to the lab: never routed anywhere but the lab's own bridge. */
export const LAB_SUBNET = '10.213.47';
export const BRIDGE = 'sempre-br0';
/** The root namespace's own address on the bridge, so drills can reach the hosts. */
export const OPERATOR_ADDRESS = `${LAB_SUBNET}.254`;
/** Every address of the lab's /24: the only non-loopback targets load may go to. */
export const LAB_ADDRESSES: readonly string[] = Array.from({ length: 256 }, (_v, i) => `${LAB_SUBNET}.${i}`);
const STATE_DIR = join(PROJECT_ROOT, '.run', 'lab');
const STATE_FILE = join(STATE_DIR, 'state.json');
/** The apps' PID and hold files (lab/restarter.ts). */
const APPS_DIR = join(STATE_DIR, 'apps');
/**
 * The single balancer host's --run-dir: main.pid (the balancer's main
 * process, which the keeper starts again) and reload.json (the last reload's
 * outcome), what bin/sempre-balancer-reload reads. The pair (--balancers 2)
 * runs its balancers as before, without a keeper.
 */
export const BALANCER_RUN_DIR = join(STATE_DIR, 'balancer');
const SOCKET_KEEPER = join(PROJECT_ROOT, 'bin/sempre-socket-keeper');
const BALANCER_BIN = join(PROJECT_ROOT, 'bin/sempre-balancer');
/** The keeper's --restart-delay: systemd's RestartSec default, as the apps' restarter waits. */
export const KEEPER_RESTART_DELAY_MS = 100;
/** Where each app host's agent keeps the evidence of its heals. */
export const EVIDENCE_DIR = join(STATE_DIR, 'evidence');
/**
 * The agents' --heal-after in the lab (production keeps 20 s). Longer than
 * the drills that hang an app on purpose and expect it back when they resume
 * it (hang: 5 s by default; the POST drill of drills.test.ts holds app1 6.5 s,
 * and an agent's first failed probe comes up to 1.8 s after the SIGSTOP), so
 * those stay hangs, not heals; short enough for the hung-* drills, which wait
 * for the heal. `./sempre lab up --heal-after` changes it.
 */
export const LAB_HEAL_AFTER_MS = 8000;
/**
 * The agents' --heal-budget in the lab: drills heal the same instance again
 * and again within the hour (production keeps 3 per hour; heal.test.ts shows
 * the budget at work).
 */
const LAB_HEAL_BUDGET = 20;
const NODE = process.execPath;

export interface LabHost {
  name: string;
  namespace: string;
  address: string;
}

/** With pidFile/holdFile: an app under its restarter, `pid` being the restarter's. */
export interface LabProcess extends Restarted {
  name: string;
  host: string;
  pid: number;
  command: string[];
  log: string;
}

export interface LabState {
  kind: 'netns';
  service: string;
  hosts: Record<string, LabHost>;
  processes: Record<string, LabProcess>;
  url: string;
  adminUrl: string;
  consulUrl: string;
  /** The initial management token: the lab's tooling and tests may do anything. */
  consulToken: string;
  /** Hosts running a Consul server. */
  servers: string[];
  /** Hosts running a balancer: infra, and app1 too with `--balancers 2`. */
  balancerHosts: string[];
  /** With two balancers: the virtual address keepalived moves between them, and the page there. */
  vip?: string;
  vipUrl?: string;
  secretsDir: string;
  adminToken: string;
  startedAt: string;
  /** The agents' --heal-after; absent: a lab started before its agents healed. */
  healAfterMs?: number;
}

export class LabError extends Error {}

/** The lab's app hosts (app1, app2, … and any added by scale-out), in the order they were added. */
export function appHosts(state: LabState): string[] {
  return Object.keys(state.hosts).filter((h) => /^app\d+$/.test(h));
}

export function hostAddress(name: string): string {
  if (name === 'infra') return `${LAB_SUBNET}.1`;
  if (name === 'client') return `${LAB_SUBNET}.100`;
  const n = Number(name.replace(/^app/, ''));
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new LabError(`lab hosts are infra, client and app1 … app50 (got ${name})`);
  return `${LAB_SUBNET}.${10 + n}`;
}

function run(command: string, args: string[], { allowFail = false } = {}): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    if (allowFail) return '';
    const e = error as { stderr?: string; status?: number };
    throw new LabError(`${command} ${args.join(' ')} failed (exit ${e.status ?? '?'}): ${(e.stderr ?? '').trim()}`);
  }
}

/**
 * Throws unless `host`, a lab address, is on a link of the lab right now:
 * routed with no gateway, from one of the lab's own addresses (the bridge in
 * the root namespace, a lab host's interface inside its namespace). The lab
 * can be taken down under a running bench or drill (another terminal's `lab
 * down`); its addresses then follow the default route off the machine (seen
 * once: a bench kept sending to 10.213.47.1 via the default gateway after
 * its lab was gone). drill/load-generator.ts's assertSafeTarget calls it for
 * every target that is not loopback.
 */
export function assertRoutedToLab(host: string): void {
  const route = run('ip', ['-o', 'route', 'get', host], { allowFail: true });
  const onLabLink = !/\svia\s/.test(route) && new RegExp(`\\ssrc ${LAB_SUBNET.replaceAll('.', '\\.')}\\.\\d+\\b`).test(route);
  if (!onLabLink) throw new LabError(`refusing to send load to ${host}: it is not on a link of the lab (${route.trim() || 'no route'}); is the lab down? (sudo ./sempre lab up)`);
}

export function readLabState(): LabState | undefined {
  if (!existsSync(STATE_FILE)) return undefined;
  return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as LabState;
}

export function saveLabState(state: LabState): void {
  mkdirSync(STATE_DIR, { recursive: true });
  writeFileSync(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
}

/** The running lab, or a clear error saying how to start one. */
export function requireLab(): LabState {
  const state = readLabState();
  if (!state) throw new LabError('the multi-host lab is not up: start it with `sudo ./sempre lab up`');
  const dead = Object.values(state.processes).filter((p) => !isAlive(p.pid) && p.name === 'balancer');
  if (dead.length > 0) throw new LabError('the lab is in a bad state (its balancer is not running): `sudo ./sempre lab down` and up again');
  return state;
}

/** Running, and not a zombie waiting for its parent to reap it. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function logTail(file: string, lines = 5): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join(' | ').slice(-1500) || '(empty)';
  } catch {
    return '(no log)';
  }
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new LabError('the multi-host lab needs root (network namespaces, a bridge, nftables): run it with sudo');
}

export function addHost(state: LabState, name: string): LabHost {
  const host: LabHost = { name, namespace: `sempre-${name}`, address: hostAddress(name) };
  const veth = `sv-${name}`;
  run('ip', ['netns', 'add', host.namespace]);
  state.hosts[name] = host;
  saveLabState(state);
  run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.namespace]);
  run('ip', ['link', 'set', veth, 'master', BRIDGE, 'up']);
  run('ip', ['-n', host.namespace, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0']);
  run('ip', ['-n', host.namespace, 'link', 'set', 'eth0', 'up']);
  run('ip', ['-n', host.namespace, 'link', 'set', 'lo', 'up']);
  return host;
}

/** Starts a detached process inside a host's namespace; it outlives this command. */
export function startInHost(state: LabState, host: string, name: string, command: string[], restarted: Restarted = {}): LabProcess {
  const namespace = state.hosts[host]?.namespace;
  if (!namespace) throw new LabError(`no host ${host} in the lab`);
  mkdirSync(join(STATE_DIR, 'logs'), { recursive: true });
  const log = join(STATE_DIR, 'logs', `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn('ip', ['netns', 'exec', namespace, ...command], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const proc: LabProcess = { name, host, pid: child.pid ?? -1, command, log, ...restarted };
  state.processes[name] = proc;
  saveLabState(state);
  return proc;
}

export function restartProcess(state: LabState, name: string): LabProcess {
  const proc = state.processes[name];
  if (!proc) throw new LabError(`no process ${name} in the lab`);
  if (isAlive(proc.pid)) throw new LabError(`${name} is still running (pid ${proc.pid})`);
  return startInHost(state, proc.host, name, proc.command, { pidFile: proc.pidFile, holdFile: proc.holdFile, runDir: proc.runDir });
}

async function fetchOk(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
  await response.arrayBuffer();
  return response.ok;
}

/** The lab's secrets and certificates, for the Consul it runs, with what `apps` adds. */
function labSecrets(state: LabState, apps: readonly string[]): ClusterSecrets {
  const consul = findConsul();
  const secrets = planSecrets(readSecrets(state.secretsDir), { services: [state.service], servers: state.servers, apps, balancers: state.balancerHosts }, installedConsulVersion(consul));
  writeSecretFiles(state.secretsDir, secrets);
  ensureConsulTls(state.secretsDir, Object.entries(secrets.hosts).map(([name, host]) => ({ name, server: host.server })), consul);
  return secrets;
}

/** Writes the host's Consul configuration directory, as deploy/ and `sempre secrets` make it, and returns it. */
export function writeHostConsulConfig(state: LabState, name: string, secrets: ClusterSecrets): string {
  const host = state.hosts[name]!;
  return writeLabConsulConfig(join(STATE_DIR, `consul-${name}.d`), {
    name, address: host.address, server: state.servers.includes(name), bootstrapExpect: state.servers.length,
    join: state.servers.map(hostAddress), dataDir: join(STATE_DIR, `consul-${name}`),
    // The operator (drills, tests) reaches infra's Consul from the root namespace.
    ...(name === 'infra' ? { extraClientAddresses: [host.address] } : {}),
  }, secrets, join(state.secretsDir, name, 'tls'));
}

/** The host's Consul agent, run as the unit runs it: `consul agent -config-dir=DIR`. */
export function consulCommand(configDir: string): string[] {
  return [findConsul(), 'agent', `-config-dir=${configDir}`];
}

function startConsul(state: LabState, name: string, secrets: ClusterSecrets): void {
  startInHost(state, name, `${name}-consul`, consulCommand(writeHostConsulConfig(state, name, secrets)));
}

/** Starts a host's app under its restarter (which keeps its PID file); resolves once the app answers. */
async function startRestartedApp(state: LabState, name: string, app: readonly string[], ready: () => Promise<boolean>): Promise<LabProcess> {
  const files = restartFiles(APPS_DIR, name);
  mkdirSync(APPS_DIR, { recursive: true });
  rmSync(files.pidFile, { force: true });
  releaseRestarts(files);
  const proc = startInHost(state, name, name, restartedCommand(NODE, files, app), files);
  await waitFor(`${name}'s app to answer`, ready, 15_000);
  return proc;
}

async function startApp(state: LabState, name: string, secrets: ClusterSecrets, say: (m: string) => void): Promise<void> {
  const host = state.hosts[name]!;
  const app = await startRestartedApp(state, name, appCommand(state, name, '1.0.0'), () => fetchOk(`http://${host.address}:3000/healthz`));
  const heal = state.healAfterMs === undefined ? [] : ['--heal', 'true', '--heal-after', `${state.healAfterMs}ms`, '--heal-budget', String(LAB_HEAL_BUDGET),
    '--app-pid-file', app.pidFile!, '--app-log', app.log, '--evidence-dir', join(EVIDENCE_DIR, name)];
  // The agent talks to its own host's Consul agent with its own token, as in production.
  startInHost(state, name, `${name}-agent`, [NODE, join(PROJECT_ROOT, 'agent/main.ts'), '--service', state.service, '--id', name, '--address', host.address,
    '--app-host', host.address, '--port', '3000', '--consul', 'http://127.0.0.1:8500', '--consul-token', secrets.hosts[name]!.sempreAgent!.secretId,
    '--meta', 'version=1.0.0', '--log-format', 'json', ...heal]);
  await waitFor(`${name} passing in Consul`, async () => (await passingInstanceIds(state.consulUrl, state.service)).includes(name), 30_000);
  say(`${name} up at ${host.address}:3000 (app under its restarter, agent${state.healAfterMs === undefined ? '' : ` healing it after ${state.healAfterMs / 1000} s hung`}, Consul ${state.servers.includes(name) ? 'server' : 'client'})`);
}

function appCommand(state: LabState, name: string, version: string, extra: readonly string[] = []): string[] {
  return [NODE, join(PROJECT_ROOT, 'demo-app/server.ts'), '--host', state.hosts[name]!.address, '--port', '3000', '--name', name, '--version', version, '--lab', ...extra];
}

/**
 * The lab's stand-in for installing a release on a host: stops the host's app
 * (SIGTERM: it drains) and starts it again at `version`. With `unhealthy`,
 * the new app starts with /healthz failing, as a broken release would.
 */
export async function replaceApp(state: LabState, name: string, version: string, unhealthy: boolean): Promise<void> {
  const proc = state.processes[name];
  if (!/^app\d+$/.test(name) || !proc) throw new LabError(`no app host ${name} in the lab; one of ${appHosts(state).join(', ')}`);
  if (!/^[\w.+-]{1,64}$/.test(version)) throw new LabError(`lab.version: letters, digits and . + - _ only (got ${JSON.stringify(version)})`);
  // As `systemctl stop` then `start` with the new release: the restarter stops the app (SIGTERM) and itself.
  const appPid = targetPid(proc);
  holdRestarts(proc);
  for (const pid of [proc.pid, appPid]) if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGTERM');
  await waitFor(`${name}'s app to stop`, () => !isAlive(proc.pid) && (appPid === undefined || !isAlive(appPid)), 15_000);
  await startRestartedApp(state, name, appCommand(state, name, version, unhealthy ? ['--start-unhealthy'] : []), async () => {
    const response = await fetch(`http://${state.hosts[name]!.address}:3000/healthz`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.headers.get('x-app-version') === version;
  });
}

/** A new app host's namespace, tokens (created in Consul) and certificate, before anything runs on it. */
export async function prepareAppHost(state: LabState, name: string): Promise<ClusterSecrets> {
  if (!state.hosts[name]) addHost(state, name);
  const apps = appHosts(state);
  const secrets = labSecrets(state, apps);
  await applyAcls(state.consulUrl, secrets);
  return secrets;
}

/** A new app host joining a running lab (scale-out): Consul client, app, agent. */
export async function startAppHost(state: LabState, name: string, say: (m: string) => void): Promise<void> {
  const secrets = await prepareAppHost(state, name);
  startConsul(state, name, secrets);
  await waitFor(`${name}'s Consul agent to join`, () => isAliveMember(state.consulUrl, name), 30_000);
  await startApp(state, name, secrets, say);
}

/** Removes a stopped app host added by startAppHost: its namespace, its Consul data and config, its entry in the state. */
export function forgetAppHost(state: LabState, name: string): void {
  const namespace = state.hosts[name]?.namespace;
  if (namespace) run('ip', ['netns', 'del', namespace], { allowFail: true });
  removeConsulFiles(name);
  delete state.hosts[name];
  for (const proc of [name, `${name}-agent`, `${name}-consul`]) if (!isAlive(state.processes[proc]?.pid ?? -1)) delete state.processes[proc];
  saveLabState(state);
}

function removeConsulFiles(host: string): void {
  rmSync(join(STATE_DIR, `consul-${host}`), { recursive: true, force: true });
  rmSync(join(STATE_DIR, `consul-${host}.d`), { recursive: true, force: true });
}

export interface LabUpOptions {
  instances: number;
  /** The agents' --heal-after (LAB_HEAL_AFTER_MS by default). */
  healAfterMs?: number;
  /** 2: a second balancer on app1 and keepalived on both, sharing VIP (10.213.47.10). */
  balancers?: number;
  say: (message: string) => void;
}

export const VIP = `${LAB_SUBNET}.10`;

/** The lab process name of the balancer on a host ("balancer" on infra, as always). */
export function balancerProcess(host: string): string {
  return host === 'infra' ? 'balancer' : `${host}-balancer`;
}

/** The public listener on all addresses (with a pair, requests arrive on the virtual address too), the admin one on the host's. */
const PUBLIC_LISTEN = { host: '0.0.0.0', port: 8080 };
const ADMIN_PORT = 8081;

/**
 * The balancer's command on a host. Alone (no pair), as on a server with the
 * .socket unit: bin/sempre-socket-keeper binds both listeners and runs
 * bin/sempre-balancer with them and --run-dir, starting it again when it
 * exits. In the pair, each balancer binds its own, as before (keepalived
 * moves the address when one dies).
 */
function balancerCommand(state: LabState, host: string, secrets: ClusterSecrets): { command: string[]; restarted: Restarted } {
  const args = balancerArgs(state, host, secrets);
  if (state.vip) return { command: [NODE, ...BALANCER_NODE_FLAGS, join(PROJECT_ROOT, 'balancer/main.ts'), ...args], restarted: {} };
  return {
    command: [SOCKET_KEEPER, '--listen', `public=${PUBLIC_LISTEN.host}:${PUBLIC_LISTEN.port},admin=${hostAddress(host)}:${ADMIN_PORT}`,
      '--restart-delay', `${KEEPER_RESTART_DELAY_MS}ms`, '--log-format', 'json', '--', BALANCER_BIN, '--run-dir', BALANCER_RUN_DIR, ...args],
    restarted: { pidFile: join(BALANCER_RUN_DIR, 'main.pid'), runDir: BALANCER_RUN_DIR },
  };
}

function balancerArgs(state: LabState, host: string, secrets: ClusterSecrets): string[] {
  // "--admin-token=": a base64url token may start with "-", which parseArgs would take for a flag.
  return ['--service', state.service, '--host', PUBLIC_LISTEN.host, '--port', String(PUBLIC_LISTEN.port),
    '--admin-host', hostAddress(host), '--admin-port', String(ADMIN_PORT), `--admin-token=${state.adminToken}`, '--consul', 'http://127.0.0.1:8500',
    '--consul-token', secrets.hosts[host]!.sempreBalancer!.secretId,
    // One sticky-session key for the pair, as sempre secrets writes it for production.
    `--sticky-secret=${secrets.stickySecret ?? ''}`,
    // The lab's load comes from one address (client) at rates a person would not send: no per-client rate limit here.
    '--rate-limit', '0', '--log-format', 'json'];
}

/** keepalived on each balancer host, from deploy/keepalived's template. */
function startKeepalived(state: LabState): void {
  const [a, b] = state.balancerHosts as [string, string];
  for (const [self, peer, priority] of [[a, b, 150], [b, a, 100]] as const) {
    const command = keepalivedCommand(STATE_DIR, {
      name: self, selfIp: hostAddress(self), peerIp: hostAddress(peer), priority, vip: VIP, interface: 'eth0',
      checkUrl: `http://${hostAddress(self)}:8081/healthz`,
    });
    // The notify hook (deploy/keepalived/notify-eip) logs here; no Elastic IP in the lab.
    startInHost(state, self, `${self}-keepalived`, ['env', `SEMPRE_EIP_LOG=${join(STATE_DIR, 'logs', `eip-${self}.log`)}`, ...command]);
  }
}

/** Which balancer host holds the virtual address now (undefined: none, or no pair). */
export function vipHolder(state: LabState): string | undefined {
  if (!state.vip) return undefined;
  return state.balancerHosts.find((host) => run('ip', ['-n', state.hosts[host]!.namespace, '-o', 'addr', 'show', 'dev', 'eth0'], { allowFail: true }).includes(` ${state.vip}/`));
}

export async function labUp({ instances, balancers = 1, healAfterMs = LAB_HEAL_AFTER_MS, say }: LabUpOptions): Promise<LabState> {
  requireRoot();
  if (readLabState()) throw new LabError('the lab is already up (or was not taken down): `sudo ./sempre lab down` first');
  const leftover = run('ip', ['-o', 'link', 'show'], { allowFail: true }).split('\n').some((l) => /^\d+: sv-/.test(l));
  if (leftover) throw new LabError('links of an earlier lab (sv-…) are still there: run `sudo ./sempre lab down` first');
  if (run('ip', ['route', 'show', `${LAB_SUBNET}.0/24`]).trim() || run('ip', ['link', 'show', BRIDGE], { allowFail: true }).trim()) {
    throw new LabError(`${LAB_SUBNET}.0/24 or ${BRIDGE} is already in use on this machine: the lab will not touch it`);
  }
  const infra = hostAddress('infra');
  const state: LabState = {
    kind: 'netns', service: 'web', hosts: {}, processes: {},
    url: `http://${infra}:8080/`, adminUrl: `http://${infra}:8081`, consulUrl: `http://${infra}:8500`, consulToken: '',
    // infra, app1 and app2 are the servers, as in deploy/ (fewer with --instances 1).
    servers: ['infra', 'app1', 'app2'].slice(0, Math.min(3, 1 + instances)), secretsDir: join(STATE_DIR, 'secrets'),
    balancerHosts: balancers === 2 ? ['infra', 'app1'] : ['infra'],
    ...(balancers === 2 ? { vip: VIP, vipUrl: `http://${VIP}:8080/` } : {}),
    adminToken: '', startedAt: new Date().toISOString(), healAfterMs,
  };
  rmSync(state.secretsDir, { recursive: true, force: true });
  rmSync(APPS_DIR, { recursive: true, force: true });
  rmSync(EVIDENCE_DIR, { recursive: true, force: true });
  rmSync(BALANCER_RUN_DIR, { recursive: true, force: true });
  rmSync(join(STATE_DIR, 'logs'), { recursive: true, force: true });
  saveLabState(state);
  try {
    say(`creating the bridge ${BRIDGE} (${LAB_SUBNET}.0/24) and host namespaces…`);
    run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${OPERATOR_ADDRESS}/24`, 'dev', BRIDGE]);
    run('ip', ['link', 'set', BRIDGE, 'up']);
    for (const name of ['infra', 'client', ...Array.from({ length: instances }, (_v, i) => `app${i + 1}`)]) addHost(state, name);

    const apps = Array.from({ length: instances }, (_v, i) => `app${i + 1}`);
    const secrets = labSecrets(state, apps);
    state.consulToken = secrets.management.secretId;
    state.adminToken = secrets.hosts.infra!.adminToken!;
    saveLabState(state);
    say(`starting Consul on ${state.servers.join(', ')} (servers) and ${apps.filter((a) => !state.servers.includes(a)).join(', ') || 'no other host'} (clients): ACLs on, gossip encrypted…`);
    for (const name of ['infra', ...apps]) startConsul(state, name, secrets);
    await waitFor(`the ${state.servers.length} Consul servers to elect a leader`, async () => (await (await fetch(`${state.consulUrl}/v1/status/leader`, { signal: AbortSignal.timeout(1000) })).text()).includes(':'), 60_000);
    say('creating the ACL policies and tokens (sempre secrets apply)…');
    await waitFor('the ACL system to accept the management token', async () => {
      try {
        await applyAcls(state.consulUrl, secrets);
        return true;
      } catch {
        return false;
      }
    }, 30_000, 500);

    for (const name of apps) await startApp(state, name, secrets, say);

    for (const host of state.balancerHosts) {
      say(`starting the balancer on ${host}…`);
      const { command, restarted } = balancerCommand(state, host, secrets);
      if (restarted.runDir) mkdirSync(restarted.runDir, { recursive: true });
      startInHost(state, host, balancerProcess(host), command, restarted);
      await waitFor(`the balancer on ${host} to list every instance`, async () => {
        const status = await (await fetch(`http://${hostAddress(host)}:8081/_sempre/status`, { signal: AbortSignal.timeout(1000) })).json() as { instances: unknown[] };
        return status.instances.length >= instances;
      }, 20_000);
    }
    if (state.vipUrl) {
      say(`starting keepalived on ${state.balancerHosts.join(' and ')}: virtual address ${VIP}…`);
      startKeepalived(state);
      await waitFor(`the page on the virtual address ${VIP}`, () => fetchOk(state.vipUrl!), 20_000);
    }
    return state;
  } catch (error) {
    // Say which lab process died, with the end of its log: the logs folder is
    // emptied by the next `up`, so this may be the only trace.
    const dead = Object.values(state.processes).filter((p) => !isAlive(p.pid)).map((p) => `${p.name} exited; its log ends: ${logTail(p.log)}`);
    const message = `${error instanceof Error ? error.message : String(error)}${dead.length ? `\n${dead.join('\n')}` : ''}`;
    say(`could not bring the lab up: ${message}; taking down what was created`);
    labDown(say);
    throw new LabError(message);
  }
}

/** Every process running inside a network namespace, whoever started it. */
export function namespacePids(namespace: string): number[] {
  return run('ip', ['netns', 'pids', namespace], { allowFail: true }).split(/\s+/).filter(Boolean).map(Number);
}

/** SIGKILL (after SIGCONT, for stopped ones); a process already gone is skipped. */
export function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/**
 * What a crash does to a host's kernel: its TCP connections are gone. A
 * namespace keeps them after its processes die (orphans still retransmitting
 * their FIN, TIME-WAIT), and a client that later reuses one of their ports
 * towards the same address gets an ACK for the old connection instead of a
 * reset, and waits for its timeout: the lab's single client picks its ports
 * from one range, so a balancer host that takes the address back after its
 * own "crash" sometimes held 15-90 such sockets (`ss -tan` before each
 * drill). Destroys every TCP socket left in the namespace (`ss -K`, needs
 * the kernel's CONFIG_INET_DIAG_DESTROY) and returns how many remain.
 */
export function forgetTcpConnections(namespace: string): number {
  run('ip', ['netns', 'exec', namespace, 'ss', '-K', '-t', '-a'], { allowFail: true });
  return run('ip', ['netns', 'exec', namespace, 'ss', '-t', '-a', '-n', '-H'], { allowFail: true }).split('\n').filter((line) => line.trim() !== '').length;
}

/** Removes everything the lab created; safe to run again, also after a crash. */
export function labDown(say: (message: string) => void): void {
  requireRoot();
  const state = readLabState();
  const namespaces = new Set([...Object.values(state?.hosts ?? {}).map((h) => h.namespace), ...run('ip', ['netns', 'list'], { allowFail: true }).split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith('sempre-'))]);
  // Every process inside a lab namespace, whoever started it (an app's restarter first: no restart in between).
  const pids = new Set(Object.values(state?.processes ?? {}).flatMap((p) => [p.pid, targetPid(p) ?? p.pid]));
  for (const namespace of namespaces) for (const pid of namespacePids(namespace)) pids.add(pid);
  killAll(pids);
  // A namespace lives on until its last process is gone: wait, so the next
  // `up` does not meet the old hosts' links.
  const deadline = Date.now() + 10_000;
  while ([...pids].some(isAlive) && Date.now() < deadline) execFileSync('sleep', ['0.05']);
  for (const namespace of namespaces) run('ip', ['netns', 'del', namespace], { allowFail: true });
  // Deleting the root-side veth removes both ends, whatever holds the other one.
  const links = run('ip', ['-o', 'link', 'show'], { allowFail: true }).split('\n').map((l) => /^\d+: (sv-[^@:]+)/.exec(l)?.[1]).filter((l): l is string => Boolean(l));
  for (const link of links) run('ip', ['link', 'del', link], { allowFail: true });
  run('ip', ['link', 'del', BRIDGE], { allowFail: true });
  // Logs stay (in .run/lab/logs) for a look after a failed drill; state and Consul data go.
  rmSync(STATE_FILE, { force: true });
  // Every host's Consul files, also those of a host the state no longer lists
  // (a scale-out interrupted before its revert).
  const consulHosts = existsSync(STATE_DIR) ? readdirSync(STATE_DIR).map((f) => /^consul-(.+?)(\.d)?$/.exec(f)?.[1]).filter((h): h is string => Boolean(h)) : [];
  for (const host of new Set([...Object.keys(state?.hosts ?? {}), ...consulHosts])) removeConsulFiles(host);
  rmSync(join(STATE_DIR, 'secrets'), { recursive: true, force: true });
  // The evidence of the lab's heals stays, like the logs; the PID and hold files go, and the balancer's run directory.
  rmSync(APPS_DIR, { recursive: true, force: true });
  rmSync(BALANCER_RUN_DIR, { recursive: true, force: true });
  say(`lab down: ${namespaces.size} namespace(s), the bridge and every lab process removed`);
}
