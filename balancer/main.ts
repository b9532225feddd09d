// bin/sempre-balancer. Without SEMPRE_WORKER_INDEX this is the main process
// (lifecycle/main-process.ts): it holds the sockets and runs the workers.
// With it, a worker: it serves on the sockets it inherited. The serving code
// (balancer.ts, undici, the Consul client) is imported by workers only: the
// main process stays small (about 50 MB of RSS instead of 100).
import { loadOptions, ConfigError } from '../shared/config/options.ts';
import { runCommand } from '../shared/command.ts';
import { boundedStdout } from '../shared/log-output.ts';
import { createLogger } from '../shared/logger.ts';
import { envFilePaths, withEnvFiles } from './lifecycle/env-files.ts';
import { runMainProcess } from './lifecycle/main-process.ts';
import { isRetire, WORKER_ENV, type WorkerToMain } from './lifecycle/worker-messages.ts';
import { balancerCommand, type BalancerOptions } from './options.ts';

const argv = process.argv.slice(2);

if (process.env[WORKER_ENV.index] === undefined) {
  await runCommand(balancerCommand, async (options) => {
    const logger = createLogger({ name: 'sempre-balancer', level: options.logLevel, format: options.logFormat, output: boundedStdout(options.logBuffer) });
    return runMainProcess(options, { argv, logger, workerModule: import.meta.filename });
  }, argv, () => withEnvFiles(process.env, envFilePaths(argv, process.env)));
} else {
  await runWorker();
}

async function runWorker(): Promise<void> {
  const tell = (message: WorkerToMain) => new Promise<void>((resolve) => {
    if (!process.connected) return resolve();
    process.send!(message, undefined, {}, () => resolve());
  });
  let options: BalancerOptions;
  try {
    const loaded = loadOptions(balancerCommand, argv, process.env);
    if (loaded.kind !== 'config') throw new ConfigError(['the options ask for help, not a balancer']);
    options = loaded.values;
  } catch (error) {
    const reason = error instanceof ConfigError ? error.problems.join('; ') : (error as Error).message;
    process.stderr.write(`sempre-balancer: ${reason}\n`);
    await tell({ sempre: 'failed', reason });
    process.exitCode = 2;
    if (process.connected) process.disconnect();
    return;
  }
  const index = Number(process.env[WORKER_ENV.index]);
  const logOutput = boundedStdout(options.logBuffer);
  const logger = createLogger({ name: 'sempre-balancer', level: options.logLevel, format: options.logFormat, output: logOutput }).child({ worker: index, generation: Number(process.env[WORKER_ENV.generation]) });
  // Why the worker stops: SIGTERM (the balancer stops), retire (a reload's newer
  // generation serves) or orphaned (the main process died: finish quickly).
  const stop = new AbortController();
  const stopFor = (reason: 'stop' | 'retire' | 'orphaned') => {
    if (stop.signal.aborted) {
      if (reason === 'stop') {
        logger.warn('second signal: exiting now');
        process.exit(1);
      }
      return;
    }
    stop.abort(reason);
  };
  process.on('SIGTERM', () => stopFor('stop'));
  // Ctrl-C and a terminal's hangup reach the whole process group: the main process decides.
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  process.on('message', (message) => {
    if (isRetire(message)) stopFor('retire');
  });
  process.on('disconnect', () => {
    stopFor('orphaned');
    // The main process is gone (killed, or it gave up waiting): whatever this worker is still
    // finishing, it does not outlive the shutdown timeout by much.
    setTimeout(() => process.exit(1), options.shutdownTimeout + 2000).unref();
  });
  const [{ createConsulClient }, { runBalancer }] = await Promise.all([import('../shared/consul-client.ts'), import('./balancer.ts')]);
  const consul = createConsulClient({ url: options.consul, token: options.consulToken });
  try {
    await runBalancer(options, {
      consul, logger, logOutput: () => logOutput.stats(), stop: stop.signal, worker: index,
      workers: Number(process.env[WORKER_ENV.count] ?? 1),
      sockets: { public: Number(process.env[WORKER_ENV.publicFd]), admin: Number(process.env[WORKER_ENV.adminFd]) },
      onReady: () => void tell({ sempre: 'ready' }),
    });
  } catch (error) {
    const reason = (error as Error).message;
    logger.error({ err: reason }, 'this worker cannot serve');
    await tell({ sempre: 'failed', reason });
    process.exitCode = 1;
  } finally {
    consul.destroy();
  }
  logger.info({ reason: stop.signal.reason }, 'stopped');
  // The IPC channel to the main process would keep the worker alive.
  if (process.connected) process.disconnect();
  // Nor may anything left open (a connection a failed shutdown could not close): the log has a second to flush.
  setTimeout(() => process.exit(), 1000).unref();
}
