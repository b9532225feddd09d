// The balancer's main process (the one bin/sempre-balancer starts and
// systemd knows as MainPID). It serves no request itself: it holds the
// listening sockets (held-sockets.ts), runs a generation of worker processes
// that inherit them, starts a worker again when it dies, and on SIGHUP
// reloads as nginx does:
//   1. reads the options again (flags, --environment-file, --config, environment);
//   2. starts a new generation of workers with the code and options now on
//      disk, on the same sockets;
//   3. once every new worker listens and has Consul's first answer, tells the
//      old ones to retire: they stop accepting, finish their requests, keep
//      their WebSockets until --tunnel-drain, and exit.
// A new generation that cannot serve (a bad option or certificate, broken
// code, a worker that exits or never gets ready) is stopped and the old one
// keeps serving; the reason is logged and written to the run directory,
// where bin/sempre-balancer-reload reads it for its exit status.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import type { Logger } from '../../shared/logger.ts';
import { ConfigError, loadOptions } from '../../shared/config/options.ts';
import { balancerCommand, type BalancerOptions } from '../options.ts';
import { restoreNonBlockingStdout } from '../../shared/log-output.ts';
import { announceGone, relayFromWorker } from '../worker-link.ts';
import { envFilePaths, withEnvFiles } from './env-files.ts';
import { bindHeldSocket, inheritedSockets, type HeldSocket, type SocketName } from './held-sockets.ts';
import { runDirFor, writeMainPid, writeReloadOutcome, type ReloadOutcome } from './run-dir.ts';
import { isWorkerToMain, WORKER_ADMIN_FD, WORKER_ENV, WORKER_PUBLIC_FD, type Retire } from './worker-messages.ts';

/** The main process's own code: a reload runs new workers, not a new main process. */
const MAIN_PROCESS_FILES = ['main.ts', 'options.ts', 'worker-link.ts', 'lifecycle/main-process.ts', 'lifecycle/held-sockets.ts', 'lifecycle/env-files.ts', 'lifecycle/run-dir.ts', 'lifecycle/worker-messages.ts']
  .map((file) => join(import.meta.dirname, '..', file));

function mainProcessCodeHash(): string {
  const hash = createHash('sha256');
  for (const file of MAIN_PROCESS_FILES) {
    try {
      hash.update(readFileSync(file));
    } catch {
      hash.update(`missing ${file}`);
    }
  }
  return hash.digest('hex');
}

/** How long a new worker may take to listen and hear from Consul (it waits 5 s for Consul at most). */
const READY_TIMEOUT_MS = 30_000;
/** A worker that died is started again after this; a crash loop is slowed to one start a second. */
const RESTART_DELAY_MS = 100;
const CRASH_LOOP_DELAY_MS = 1000;

interface Generation {
  id: number;
  options: BalancerOptions;
  env: NodeJS.ProcessEnv;
  count: number;
  workers: Map<number, ChildProcess>;
  ready: Set<number>;
  sockets: { public: HeldSocket; admin: HeldSocket };
}

export interface MainProcessDeps {
  argv: readonly string[];
  logger: Logger;
  /** The worker's entry point (balancer/main.ts). */
  workerModule: string;
}

export async function runMainProcess(first: BalancerOptions, deps: MainProcessDeps): Promise<number> {
  const main = new MainProcess(deps);
  return main.run(first);
}

class MainProcess {
  private readonly logger: Logger;
  private readonly inherited = inheritedSockets(process.env);
  private readonly bound = new Map<string, HeldSocket>();
  private readonly retiring = new Set<Generation>();
  private current: Generation | undefined;
  /** A generation still starting (a reload in progress): stopped with the others on SIGTERM. */
  private starting: Generation | undefined;
  private nextGeneration = 1;
  private reloads = 0;
  private reloading: Promise<void> | undefined;
  private reloadAgain = false;
  private stopping = false;
  private runDir = '';
  private lastCrash = 0;
  /** Kept for every generation, so sticky cookies and the dashboard token survive reloads. */
  private readonly stickySecret = randomBytes(32).toString('base64url');
  private readonly adminToken = randomBytes(12).toString('base64url');
  private readonly codeAtStart = mainProcessCodeHash();

  private readonly deps: MainProcessDeps;

  constructor(deps: MainProcessDeps) {
    this.deps = deps;
    this.logger = deps.logger.child({ role: 'main' });
  }

  async run(first: BalancerOptions): Promise<number> {
    this.runDir = runDirFor(first.runDir, first.port);
    writeMainPid(this.runDir);
    for (const [name, socket] of this.inherited) this.logger.info({ socket: name, from: socket.where }, 'listening socket inherited (socket activation): it outlives this process');
    if (!first.adminToken) this.logger.warn({ token: this.adminToken }, 'dashboard control token (generated; set --admin-token to choose one)');
    const started = Date.now();
    const outcome = await this.startGeneration(first, this.environment(process.env));
    if (!outcome.ok) {
      this.logger.error({ reason: outcome.reason }, 'the balancer cannot start');
      this.closeSockets(new Set());
      return 1;
    }
    this.record(true, `started generation ${this.current!.id}`, started);
    process.on('SIGHUP', () => void this.reload('SIGHUP'));
    const stopped = new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        if (this.stopping) process.exit(1); // a second signal: at once
        this.stopping = true;
        this.logger.info({ signal }, 'stopping: every worker finishes its requests and exits');
        void this.stopAll().then(resolve);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    await stopped;
    this.closeSockets(new Set());
    return 0;
  }

  /** SIGHUP: a new generation from the options and code on disk, or the old one stays and says why. */
  async reload(trigger: string): Promise<void> {
    if (this.stopping) return;
    if (this.reloading) {
      this.reloadAgain = true; // once more after this one: the files may have changed since it read them
      return;
    }
    this.reloading = (async () => {
      const started = Date.now();
      this.logger.info({ trigger }, 'reloading: starting workers with the code and options now on disk');
      const outcome = await this.tryReload();
      this.record(outcome.ok, outcome.reason, started);
      if (outcome.ok) this.logger.info({ generation: this.current!.id, durationMs: Date.now() - started }, outcome.reason);
      else this.logger.error({ reason: outcome.reason, generation: this.current?.id }, 'reload refused: the running workers keep serving');
    })();
    await this.reloading;
    this.reloading = undefined;
    if (this.reloadAgain) {
      this.reloadAgain = false;
      await this.reload(`${trigger} (again)`);
    }
  }

  private async tryReload(): Promise<{ ok: boolean; reason: string }> {
    let options: BalancerOptions;
    let env: NodeJS.ProcessEnv;
    try {
      env = this.environment(process.env);
      const loaded = loadOptions(balancerCommand, this.deps.argv, env);
      if (loaded.kind !== 'config') return { ok: false, reason: 'the options ask for help, not a balancer' };
      options = loaded.values;
    } catch (error) {
      return { ok: false, reason: error instanceof ConfigError ? error.problems.join('; ') : (error as Error).message };
    }
    const previous = this.current!;
    const outcome = await this.startGeneration(options, env);
    if (!outcome.ok) return outcome;
    this.retire(previous);
    // New workers run the new code; this process keeps the code it started with.
    const mainChanged = mainProcessCodeHash() !== this.codeAtStart;
    if (mainChanged) this.logger.warn('the main process\'s own code changed on disk: a restart applies it (the socket is held: no connection refused)');
    return { ok: true, reason: `reloaded: generation ${this.current!.id} serves, generation ${previous.id} retires${mainChanged ? '; the main process\'s own code changed too: `systemctl restart sempre-balancer` applies it' : ''}` };
  }

  /** Starts a generation and makes it current once all its workers are ready; stops it if one cannot be. */
  private async startGeneration(options: BalancerOptions, env: NodeJS.ProcessEnv): Promise<{ ok: boolean; reason: string }> {
    let sockets: Generation['sockets'];
    try {
      sockets = { public: await this.socketFor('public', options.host, options.port), admin: await this.socketFor('admin', options.adminHost, options.adminPort) };
    } catch (error) {
      return { ok: false, reason: (error as Error).message };
    }
    const count = options.workers === 0 ? availableParallelism() : options.workers;
    const generation: Generation = { id: this.nextGeneration++, options, env, count, workers: new Map(), ready: new Set(), sockets };
    this.starting = generation;
    const outcome = await new Promise<{ ok: boolean; reason: string }>((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, reason: `generation ${generation.id}: not every worker was ready within ${READY_TIMEOUT_MS / 1000} s` }), READY_TIMEOUT_MS);
      const settle = (result: { ok: boolean; reason: string }) => {
        clearTimeout(timer);
        resolve(result);
      };
      for (let index = 0; index < count; index += 1) this.startWorker(generation, index, settle);
    });
    this.starting = undefined;
    if (!outcome.ok || this.stopping) {
      for (const worker of generation.workers.values()) worker.kill('SIGTERM');
      this.closeSockets(this.socketsInUse());
      return outcome.ok ? { ok: false, reason: 'the balancer is stopping' } : outcome;
    }
    this.current = generation;
    this.closeSockets(this.socketsInUse());
    return outcome;
  }

  /** One worker; `settle` is told once the whole starting generation is ready, or one of its workers failed. */
  private startWorker(generation: Generation, index: number, settle?: (result: { ok: boolean; reason: string }) => void): void {
    const worker = fork(this.deps.workerModule, [...this.deps.argv], {
      execArgv: process.execArgv,
      env: this.workerEnv(generation, index),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', generation.sockets.public.fd, generation.sockets.admin.fd],
    });
    restoreNonBlockingStdout();
    generation.workers.set(index, worker);
    let failure: string | undefined;
    worker.on('message', (message: unknown) => {
      if (!isWorkerToMain(message)) return relayFromWorker(worker, message, generation.workers);
      if (message.sempre === 'failed') {
        failure = message.reason;
        settle?.({ ok: false, reason: `generation ${generation.id}, worker ${index}: ${message.reason}` });
        return;
      }
      generation.ready.add(index);
      if (generation.ready.size === generation.count) settle?.({ ok: true, reason: `generation ${generation.id} ready` });
    });
    worker.on('exit', (code, signal) => this.workerExited(generation, index, worker, code, signal, failure, settle));
  }

  private workerExited(generation: Generation, index: number, worker: ChildProcess, code: number | null, signal: NodeJS.Signals | null, failure: string | undefined, settle?: (result: { ok: boolean; reason: string }) => void): void {
    restoreNonBlockingStdout();
    if (generation.workers.get(index) === worker) generation.workers.delete(index);
    announceGone(index, generation.workers);
    if (!generation.ready.has(index)) {
      // Still starting: the whole generation is refused (settle is a no-op once settled).
      settle?.({ ok: false, reason: `generation ${generation.id}, worker ${index} exited before it was ready (code ${code}, signal ${signal})${failure ? `: ${failure}` : '; its error is in the log above'}` });
      return;
    }
    if (this.retiring.has(generation)) {
      if (generation.workers.size === 0) {
        this.retiring.delete(generation);
        this.logger.info({ generation: generation.id }, 'retired generation has exited');
        this.closeSockets(this.socketsInUse());
      }
      return;
    }
    if (this.stopping || generation !== this.current) return;
    const now = Date.now();
    const delay = now - this.lastCrash < 10_000 ? CRASH_LOOP_DELAY_MS : RESTART_DELAY_MS;
    this.lastCrash = now;
    this.logger.error({ worker: index, pid: worker.pid, code, signal, restartInMs: delay }, 'worker exited; starting it again (the listening socket stays open: new connections wait for it)');
    generation.ready.delete(index);
    setTimeout(() => {
      if (!this.stopping && this.current === generation) this.startWorker(generation, index);
    }, delay);
  }

  private retire(generation: Generation): void {
    this.retiring.add(generation);
    // --tunnel-drain for the WebSockets, then --shutdown-timeout; a worker still there after both is killed.
    const deadline = generation.options.tunnelDrain + generation.options.shutdownTimeout + 5000;
    for (const worker of generation.workers.values()) {
      if (worker.connected) worker.send({ sempre: 'retire' } satisfies Retire);
      else worker.kill('SIGTERM');
    }
    setTimeout(() => {
      for (const worker of generation.workers.values()) worker.kill('SIGKILL');
    }, deadline).unref();
    if (generation.workers.size === 0) this.retiring.delete(generation);
  }

  private async stopAll(): Promise<void> {
    const all = [this.current, this.starting, ...this.retiring].filter((g) => g !== undefined).flatMap((g) => [...g.workers.values()]);
    await Promise.all(all.map((worker) => new Promise<void>((resolve) => {
      if (worker.exitCode !== null || worker.signalCode !== null) return resolve();
      worker.once('exit', () => resolve());
      worker.kill('SIGTERM');
    })));
  }

  /** The inherited socket of that name, or one bound here (kept while a generation uses it). */
  private async socketFor(name: SocketName, host: string, port: number): Promise<HeldSocket> {
    const inherited = this.inherited.get(name);
    if (inherited) return inherited;
    const address = isIP(host) ? host : (await lookup(host)).address;
    const key = `${address}:${port}`;
    const known = this.bound.get(key);
    if (known) return known;
    const socket = bindHeldSocket(address, port);
    this.bound.set(key, socket);
    return socket;
  }

  private socketsInUse(): Set<HeldSocket> {
    return new Set([this.current, ...this.retiring].filter((g) => g !== undefined).flatMap((g) => [g.sockets.public, g.sockets.admin]));
  }

  /** Closes the sockets bound here that no generation uses any more (a reload changed --port). */
  private closeSockets(inUse: Set<HeldSocket>): void {
    for (const [key, socket] of this.bound) {
      if (inUse.has(socket)) continue;
      socket.close();
      this.bound.delete(key);
    }
  }

  /** The environment with the --environment-file files read now. */
  private environment(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    return withEnvFiles(base, envFilePaths(this.deps.argv, base));
  }

  private workerEnv(generation: Generation, index: number): NodeJS.ProcessEnv {
    return {
      ...generation.env,
      // The sockets are the worker's fds 4 and 5, not systemd's: it must not read LISTEN_FDS.
      LISTEN_FDS: '', LISTEN_FDNAMES: '', LISTEN_PID: '',
      [WORKER_ENV.index]: String(index),
      [WORKER_ENV.generation]: String(generation.id),
      [WORKER_ENV.count]: String(generation.count),
      [WORKER_ENV.publicFd]: String(WORKER_PUBLIC_FD),
      [WORKER_ENV.adminFd]: String(WORKER_ADMIN_FD),
      ...(generation.options.stickySecret ? {} : { SEMPRE_STICKY_SECRET: this.stickySecret }),
      ...(generation.options.adminToken ? {} : { SEMPRE_ADMIN_TOKEN: this.adminToken }),
    };
  }

  private record(ok: boolean, reason: string, started: number): void {
    const outcome: ReloadOutcome = { seq: this.reloads++, ok, reason, pid: process.pid, generation: this.current?.id ?? 0, at: new Date().toISOString(), durationMs: Date.now() - started };
    try {
      writeReloadOutcome(this.runDir, outcome);
    } catch (error) {
      this.logger.warn({ err: (error as Error).message, runDir: this.runDir }, 'cannot write the reload outcome to the run directory');
    }
  }
}
