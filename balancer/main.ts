import { createConsulClient } from '../shared/consul-client.ts';
import { runCommand } from '../shared/command.ts';
import { createLogger } from '../shared/logger.ts';
import { runBalancer } from './balancer.ts';
import { balancerCommand } from './options.ts';

await runCommand(balancerCommand, async (options) => {
  const logger = createLogger({ name: 'sempre-balancer', level: options.logLevel, format: options.logFormat });
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stop.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const consul = createConsulClient({ url: options.consul, token: options.consulToken });
  try {
    await runBalancer(options, { consul, logger, stop: stop.signal });
  } finally {
    consul.destroy();
  }
  logger.info('stopped');
  return 0;
});
