import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { createConsulClient } from '../shared/consul-client.ts';
import { runCommand } from '../shared/command.ts';
import { boundedStdout } from '../shared/log-output.ts';
import { createLogger } from '../shared/logger.ts';
import { runBalancer } from './balancer.ts';
import { relayBetweenWorkers } from './worker-link.ts';
import { balancerCommand, type BalancerOptions } from './options.ts';

/** With --workers above 1, the primary only forks and restarts workers; they share the public port. */
async function supervise(options: BalancerOptions, count: number): Promise<number> {
  const logger = createLogger({ name: 'sempre-balancer', level: options.logLevel, format: options.logFormat, output: boundedStdout(options.logBuffer) });
  let stopping = false;
  const byIndex = new Map<number, Worker>();
  // Workers must read each other's sticky cookies: one key for all of them.
  const stickySecret = options.stickySecret || randomBytes(32).toString('base64url');
  const fork = (index: number) => {
    const worker = cluster.fork({ SEMPRE_WORKER_INDEX: String(index), SEMPRE_STICKY_SECRET: stickySecret });
    byIndex.set(index, worker);
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      logger.error({ worker: index, code, signal }, 'worker exited; starting it again');
      setTimeout(() => fork(index), 500);
    });
  };
  for (let i = 0; i < count; i += 1) fork(i);
  relayBetweenWorkers(() => byIndex);
  logger.info({ workers: count }, 'balancer started in cluster mode');
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(1); // a second signal: at once
      stopping = true;
      logger.info({ signal }, 'stopping every worker');
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
      cluster.on('exit', () => {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  return 0;
}

await runCommand(balancerCommand, async (options) => {
  const workers = options.workers === 0 ? availableParallelism() : options.workers;
  if (workers > 1 && cluster.isPrimary) return supervise(options, workers);
  const index = cluster.isWorker ? Number(process.env.SEMPRE_WORKER_INDEX ?? 0) : 0;
  const logOutput = boundedStdout(options.logBuffer);
  const logger = createLogger({ name: 'sempre-balancer', level: options.logLevel, format: options.logFormat, output: logOutput }).child(cluster.isWorker ? { worker: index } : {});
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stop.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', () => {
    // In cluster mode Ctrl-C reaches every process: the primary orders the stop.
    if (!cluster.isWorker) onSignal('SIGINT');
  });
  const consul = createConsulClient({ url: options.consul, token: options.consulToken });
  try {
    // A worker resolves --workers as the primary did: same options, same machine.
    await runBalancer(options, { consul, logger, logOutput: () => logOutput.stats(), stop: stop.signal, worker: index, workers });
  } finally {
    consul.destroy();
  }
  logger.info('stopped');
  // A worker's IPC channel to the primary would keep it alive.
  if (cluster.isWorker) cluster.worker?.disconnect();
  return 0;
});
