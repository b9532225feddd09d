// The whole system on one machine, with real processes: a Consul dev agent,
// N demo-app instances each with its registration agent, and the balancer.
// Each app instance gets its own loopback address (127.0.0.11, .12, …) as if
// it were its own server. Used by `./sempre up` and by the integration tests.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findConsul, PROJECT_ROOT } from './consul-binary.ts';
import { passingInstanceIds } from './consul-health.ts';
import { parseProcStat } from '../agent/heal/evidence.ts';
import { BALANCER_NODE_FLAGS } from './balancer-node-flags.ts';
import { balancerWorkers } from './process-tree.ts';
import { startProcess, waitFor, waitUntilUp, type ManagedProcess } from './processes.ts';

export interface StackPorts {
  consulHttp: number;
  consulSerfLan: number;
  consulSerfWan: number;
  consulServer: number;
  balancer: number;
  admin: number;
  app: number;
}

/** When the process started, in clock ticks since boot (field 22 of /proc/PID/stat; undefined if gone). */
function processStartTicks(pid: number): number | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).startTicks;
  } catch {
    return undefined;
  }
}

/** The standard ports, or a block of ports starting at `base` (tests use their own block). */
export function stackPorts(base?: number): StackPorts {
  if (base === undefined) return { consulHttp: 8500, consulSerfLan: 8301, consulSerfWan: 8302, consulServer: 8300, balancer: 8080, admin: 8081, app: 3000 };
  return { consulHttp: base, consulSerfLan: base + 1, consulSerfWan: base + 2, consulServer: base + 3, balancer: base + 10, admin: base + 11, app: base + 20 };
}

export interface StackOptions {
  instances?: number;
  base?: number;
  logDir: string;
  /** Start the demo apps with their fault switch (drills, tests). */
  lab?: boolean;
  /** App to start instead of demo-app/server.ts (same --host/--port/--name arguments; --lab goes only to the demo app). */
  appScript?: string;
  service?: string;
  agentArgs?: readonly string[];
  balancerArgs?: readonly string[];
  /** More arguments and environment for the apps (the demo app's --backlog, --start-delay, SEMPRE_HANG_ON_START). */
  appArgs?: readonly string[];
  appEnv?: NodeJS.ProcessEnv;
  /**
   * Agents heal their app (--heal true): each app's PID is kept in
   * LOGDIR/NAME.pid for its agent, and an app that exits is started again by
   * the stack, as systemd's Restart=always does on the servers.
   */
  heal?: boolean;
  /**
   * Run the balancer under bin/sempre-socket-keeper, as systemd's socket unit
   * and Restart=always do on the infra host: its sockets outlive it, and it
   * is started again when it exits. Its run directory is LOGDIR/balancer-run.
   */
  keepBalancer?: boolean;
  /** Run the balancer's code from this copy of the project instead (a test changes a file there, then reloads). */
  balancerRoot?: string;
  onProgress?: (message: string) => void;
}

const NODE = process.execPath;

export class LocalStack {
  readonly ports: StackPorts;
  readonly options: Required<Pick<StackOptions, 'instances' | 'logDir' | 'lab' | 'service'>> & StackOptions;
  consul: ManagedProcess | undefined;
  balancer: ManagedProcess | undefined;
  /** Demo-app processes by instance name (app1, app2, …). */
  readonly apps = new Map<string, ManagedProcess>();
  /** Registration agents by the name of the instance they register. */
  readonly agents = new Map<string, ManagedProcess>();
  private stopped = false;
  /** Apps that exited soon after starting, in a row (the restart backs off). */
  private readonly quickExits = new Map<string, number>();
  /** The dashboard's control token, chosen here so the launcher can print it. */
  readonly adminToken = randomBytes(9).toString('base64url');

  constructor(options: StackOptions) {
    this.options = { instances: 2, lab: false, service: 'web', ...options };
    this.ports = stackPorts(options.base);
  }

  get url(): string {
    return `http://127.0.0.1:${this.ports.balancer}/`;
  }

  get statusUrl(): string {
    return `http://127.0.0.1:${this.ports.admin}/_sempre/status`;
  }

  get dashboardUrl(): string {
    return `http://127.0.0.1:${this.ports.admin}/dashboard/`;
  }

  get consulUrl(): string {
    return `http://127.0.0.1:${this.ports.consulHttp}`;
  }

  private progress(message: string): void {
    this.options.onProgress?.(message);
  }

  async start(): Promise<this> {
    try {
      await this.startConsul();
      for (let i = 1; i <= this.options.instances; i += 1) await this.addInstance(`app${i}`);
      await this.startBalancer();
      return this;
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  async startConsul(): Promise<ManagedProcess> {
    const started = Date.now();
    this.progress('starting Consul (dev agent)…');
    const p = this.ports;
    const consul = startProcess({
      name: 'consul',
      command: findConsul(),
      args: ['agent', '-dev', '-bind', '127.0.0.1', '-client', '127.0.0.1', '-http-port', String(p.consulHttp), '-dns-port', '-1', '-grpc-port', '-1',
        '-serf-lan-port', String(p.consulSerfLan), '-serf-wan-port', String(p.consulSerfWan), '-server-port', String(p.consulServer), '-log-level', 'warn'],
      logDir: this.options.logDir,
    });
    this.consul = consul;
    await waitUntilUp(consul, 'Consul to elect itself leader', async () => {
      const response = await fetch(`${this.consulUrl}/v1/status/leader`, { signal: AbortSignal.timeout(1000) });
      return response.ok && (await response.text()).includes(':');
    }, 20_000);
    this.progress(`Consul up at ${this.consulUrl} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return consul;
  }

  /** Each instance is its own "host": app1 → 127.0.0.11, app2 → 127.0.0.12, … */
  addressOf(name: string): string {
    const n = Number(name.replace(/\D/g, ''));
    if (!Number.isInteger(n) || n < 1 || n > 200) throw new Error(`instance names are app1 … app200 (got ${name})`);
    return `127.0.0.${10 + n}`;
  }

  app(name: string): ManagedProcess {
    const app = this.apps.get(name);
    if (!app) throw new Error(`no app ${name} in this stack`);
    return app;
  }

  agent(name: string): ManagedProcess {
    const agent = this.agents.get(name);
    if (!agent) throw new Error(`no agent for ${name} in this stack`);
    return agent;
  }

  async startApp(name: string): Promise<ManagedProcess> {
    const address = this.addressOf(name);
    const script = this.options.appScript ?? join(PROJECT_ROOT, 'demo-app/server.ts');
    const app = startProcess({
      name,
      command: NODE,
      args: [script, '--host', address, '--port', String(this.ports.app), '--name', name, ...(this.options.lab && !this.options.appScript ? ['--lab'] : []), ...(this.options.appArgs ?? [])],
      logDir: this.options.logDir,
      ...(this.options.appEnv ? { env: { ...process.env, ...this.options.appEnv } } : {}),
    });
    this.apps.set(name, app);
    if (this.options.heal) {
      // The PID and its start time: the agent kills it only if that process is still the app.
      writeFileSync(this.pidFile(name), `${app.pid} ${processStartTicks(app.pid) ?? ''}\n`);
      const startedAt = Date.now();
      // What started the app starts it again when it exits (its agent killed it to heal it),
      // backing off when it keeps dying at start, as systemd's StartLimitBurst does.
      void app.exited.then(async () => {
        if (this.stopped || this.apps.get(name) !== app) return;
        const quickExits = Date.now() - startedAt < 10_000 ? (this.quickExits.get(name) ?? 0) + 1 : 0;
        this.quickExits.set(name, quickExits);
        if (quickExits > 5) return this.progress(`${name} exited at start ${quickExits} times in a row: not starting it again`);
        if (quickExits > 1) await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 1000 * 2 ** (quickExits - 2))));
        if (this.stopped || this.apps.get(name) !== app) return;
        this.progress(`${name} exited; starting it again`);
        this.startApp(name).catch((error: unknown) => this.progress(`${name} did not start again: ${(error as Error).message}`));
      });
    }
    await waitUntilUp(app, `${name} to answer /healthz`, async () => (await fetch(`http://${address}:${this.ports.app}/healthz`, { signal: AbortSignal.timeout(1000) })).ok, 15_000);
    return app;
  }

  async startAgent(name: string, extraArgs: readonly string[] = []): Promise<ManagedProcess> {
    const address = this.addressOf(name);
    const agent = startProcess({
      name: `${name}-agent`,
      command: NODE,
      args: [join(PROJECT_ROOT, 'agent/main.ts'), '--service', this.options.service, '--id', name, '--address', address, '--app-host', address,
        '--port', String(this.ports.app), '--consul', this.consulUrl, '--log-format', 'json', '--meta', 'version=1.0.0',
        ...(this.options.heal ? ['--heal', 'true', '--app-pid-file', this.pidFile(name), '--app-log', join(this.options.logDir, `${name}.log`), '--evidence-dir', join(this.options.logDir, 'evidence')] : []),
        ...(this.options.agentArgs ?? []), ...extraArgs],
      logDir: this.options.logDir,
    });
    this.agents.set(name, agent);
    await waitUntilUp(agent, `${name} to be registered and passing in Consul`, () => this.isPassing(name), 15_000);
    return agent;
  }

  /** Where the app's PID is kept for its agent (with `heal`). */
  pidFile(name: string): string {
    return join(this.options.logDir, `${name}.pid`);
  }

  /** Starts an app and its agent, as on a new server; resolves once Consul lists it passing. */
  async addInstance(name: string): Promise<void> {
    this.progress(`starting ${name} (demo app + agent) on ${this.addressOf(name)}:${this.ports.app}…`);
    await this.startApp(name);
    await this.startAgent(name);
    this.progress(`${name} registered and healthy in Consul`);
  }

  /** Scales in: the agent drains and deregisters (SIGTERM), then the app stops. */
  async removeInstance(name: string): Promise<void> {
    await this.agents.get(name)?.stop(10_000);
    const app = this.apps.get(name);
    this.apps.delete(name); // first: an app stopped on purpose is not started again
    this.agents.delete(name);
    await app?.stop();
  }

  async isPassing(name: string): Promise<boolean> {
    return (await passingInstanceIds(this.consulUrl, this.options.service)).includes(name);
  }

  /**
   * `stdout`: where its standard output goes instead of its log file (a file descriptor, or a pipe).
   * `instances`: how many it must list before it counts as up (every agent's, by default; fewer when one of them is down).
   */
  async startBalancer(stdout?: number | 'pipe', instances?: number): Promise<ManagedProcess> {
    this.progress('starting the balancer…');
    const root = this.options.balancerRoot ?? PROJECT_ROOT;
    const balancerArgs = [...BALANCER_NODE_FLAGS, join(root, 'balancer/main.ts'), '--service', this.options.service, '--host', '127.0.0.1', '--port', String(this.ports.balancer),
      '--admin-port', String(this.ports.admin), '--consul', this.consulUrl, '--log-format', 'json', '--run-dir', this.balancerRunDir,
      // "=": a base64url token may start with "-", which parseArgs would take for a flag.
      `--admin-token=${this.adminToken}`, ...(this.options.balancerArgs ?? [])];
    const keeper = [join(root, 'balancer/lifecycle/socket-keeper.ts'), '--listen', `public=127.0.0.1:${this.ports.balancer},admin=127.0.0.1:${this.ports.admin}`, '--log-format', 'json', '--', NODE];
    const balancer = startProcess({
      name: 'balancer',
      command: NODE,
      args: this.options.keepBalancer ? [...keeper, ...balancerArgs] : balancerArgs,
      logDir: this.options.logDir,
      ...(stdout === undefined ? {} : { stdout }),
    });
    this.balancer = balancer;
    // With Consul up, wait until the balancer lists every registered instance;
    // without it, until the balancer answers its status endpoint.
    const consulUp = this.consul?.running() ?? false;
    const expected = consulUp ? (instances ?? this.agents.size) : 0;
    await waitUntilUp(balancer, `the balancer to list ${expected} instance(s)`, async () => {
      const status = await this.status();
      return status.instances.length >= expected;
    }, 15_000);
    this.progress(`balancer up at ${this.url}`);
    return balancer;
  }

  /** Where the balancer's main process writes main.pid and the last reload's outcome. */
  get balancerRunDir(): string {
    return join(this.options.logDir, 'balancer-run');
  }

  /** The balancer's worker processes (those serving): the children of its main process, which may be below the keeper. */
  balancerWorkerPids(): number[] {
    if (!this.balancer) return [];
    return balancerWorkers(this.balancer.pid, join(this.options.balancerRoot ?? PROJECT_ROOT, 'balancer/main.ts'), this.options.keepBalancer);
  }

  async status(): Promise<BalancerStatus> {
    const response = await fetch(this.statusUrl, { signal: AbortSignal.timeout(1000) });
    return (await response.json()) as BalancerStatus;
  }

  /** Waits until the balancer's table satisfies `check`. */
  async waitForStatus(what: string, check: (status: BalancerStatus) => boolean, timeoutMs = 15_000): Promise<BalancerStatus> {
    return waitFor(what, async () => {
      const status = await this.status();
      return check(status) ? status : undefined;
    }, timeoutMs);
  }

  /** Stops everything, balancer first so no request meets a half-stopped stack. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.balancer?.stop();
    await Promise.all([...this.agents.values()].map((agent) => agent.stop()));
    await Promise.all([...this.apps.values()].map((app) => app.stop()));
    await this.consul?.stop();
  }
}

export interface BalancerStatus {
  service: string;
  consul: { reachable: boolean; everAnswered: boolean; lastError: string | null };
  table: { version: number; size: number };
  instances: Array<{ id: string; state: string; outstanding: number; requests: number; failures: number; ejections: number }>;
}
