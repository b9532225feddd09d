import { createConsulClient } from '../shared/consul-client.ts';
import { runCommand } from '../shared/command.ts';
import { boundedStdout } from '../shared/log-output.ts';
import { createLogger } from '../shared/logger.ts';
import { runAgent } from './agent.ts';
import { appHandle } from './heal/app-handle.ts';
import { createHealer } from './heal/healer.ts';
import { httpHealthProbe } from './health-probe.ts';
import { agentCommand, defaultInstanceId } from './options.ts';
import { instanceOrigin } from '../shared/instance.ts';

await runCommand(agentCommand, async (options) => {
  const logger = createLogger({ name: 'sempre-agent', level: options.logLevel, format: options.logFormat, output: boundedStdout(options.logBuffer) });
  const instanceId = defaultInstanceId(options);
  const stop = new AbortController();
  const hurry = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      logger.warn({ signal }, 'second signal: exiting now');
      hurry.abort();
      return;
    }
    logger.info({ signal }, 'stopping: leaving rotation');
    stop.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const consul = createConsulClient({ url: options.consul, token: options.consulToken });
  const probeUrl = `${instanceOrigin({ address: options.appHost, port: options.port })}${options.healthPath}`;
  const app = options.heal ? appHandle(options) : undefined;
  const healer = app ? createHealer({ options, instanceId, consul, logger: logger.child({ instance: instanceId, service: options.service }), app }) : undefined;
  if (healer) logger.info({ healAfterMs: options.healAfter, how: app!.how, concurrency: options.healConcurrency, budget: `${options.healBudget} per ${options.healWindow} ms`, onError: options.healOnError }, 'healing on: a hung app is restarted, one instance of the service at a time');
  await runAgent(options, instanceId, { consul, logger, probe: httpHealthProbe(probeUrl, options.probeTimeout), stop: stop.signal, hurry: hurry.signal, healer });
  consul.destroy();
  logger.info('stopped');
  return 0;
});
