// `./sempre up`: the whole system on this machine — Consul, N demo-app
// instances each with its agent, the balancer — until Ctrl-C.
import '../shared/closed-stdout.ts';
import { join } from 'node:path';
import { runCommand } from '../shared/command.ts';
import type { CommandSpec } from '../shared/config/options.ts';
import { boolean, integer } from '../shared/config/values.ts';
import { PROJECT_ROOT } from './consul-binary.ts';
import { LocalStack } from './local-stack.ts';

const options = {
  instances: { flag: 'instances', env: 'SEMPRE_INSTANCES', placeholder: 'N', default: '2', description: 'app instances to start, each with its agent', schema: integer(1, 9) },
  basePort: { flag: 'base-port', env: 'SEMPRE_BASE_PORT', placeholder: 'PORT', default: '0', description: 'first of a block of ports to use instead of the standard 8500/8080/8081/3000 (0: standard)', schema: integer(0, 65000) },
  lab: { flag: 'lab', env: 'SEMPRE_LAB', placeholder: 'BOOL', default: 'true', description: 'start the demo apps with their fault switch (/_fault) for trying failures by hand', schema: boolean() },
  heal: { flag: 'heal', env: 'SEMPRE_HEAL', placeholder: 'BOOL', default: 'true', description: 'agents restart a hung app after 20 s (one at a time, evidence in .run/stack/evidence/), and an app that exits is started again', schema: boolean() },
};
const upCommand: CommandSpec<typeof options> = {
  command: './sempre up',
  section: 'up',
  summary: 'starts Consul, the demo app instances with their agents, and the balancer on this machine',
  options,
  examples: [
    './sempre up                    # two instances; the page at http://127.0.0.1:8080/',
    './sempre up --instances 3',
    "curl -X PUT 'http://127.0.0.11:3000/_fault?mode=deadlock'   # hang app1 for good: its agent restarts it after 20 s",
    './sempre up --heal false       # leave a hung app hung (as before)',
    './sempre up --base-port 18000  # ports 18000 (Consul) … 18010 (page) … if the standard ones are taken',
  ],
  notes: [
    'Everything binds loopback only. Each instance has its own address (app1 on 127.0.0.11, app2 on',
    '127.0.0.12, …) as if it were its own server. Ctrl-C stops everything it started.',
  ],
};

await runCommand(upCommand, async (o) => {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const logDir = join(PROJECT_ROOT, '.run', 'stack');
  const stack = new LocalStack({ instances: o.instances, base: o.basePort || undefined, lab: o.lab, heal: o.heal, keepBalancer: true, logDir, onProgress: (m) => say(`  · ${m}`) });
  say('sempre: starting the local stack');
  const started = Date.now();
  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    say(`\nsempre: ${why}; stopping everything…`);
    await stack.stop();
    say('sempre: stopped; nothing left running.');
  };
  process.on('SIGINT', () => void stop('Ctrl-C').then(() => process.exit(0)));
  process.on('SIGTERM', () => void stop('SIGTERM').then(() => process.exit(0)));
  try {
    await stack.start();
  } catch (error) {
    say(`sempre: could not start: ${error instanceof Error ? error.message : String(error)}`);
    say(`sempre: logs are in ${logDir}`);
    return 1;
  }
  const p = stack.ports;
  const next = o.instances + 1;
  const nextHost = `127.0.0.${10 + next}`;
  // app1 by its port too: 'name app1' alone would also match another stack's or a test's app1.
  const app1Pattern = `port ${p.app} --name app1`;
  say(`
sempre is up (${((Date.now() - started) / 1000).toFixed(1)} s).

  The page:         ${stack.url}
  Dashboard:        ${stack.dashboardUrl}   (control token: ${stack.adminToken})
  Balancer status:  ${stack.statusUrl}
  Metrics:          http://127.0.0.1:${p.admin}/metrics
  Consul UI:        ${stack.consulUrl}/ui/
  Logs:             ${logDir}/

Try it (in another terminal, in ${PROJECT_ROOT}):
  curl -si ${stack.url} | grep x-served-by           # which instance answered
  kill -9 $(pgrep -f '${app1Pattern}')${' '.repeat(Math.max(1, 30 - app1Pattern.length))}# crash app1: the page stays up
  bin/sempre-demo-app --host 127.0.0.11 --port ${p.app} --name app1${o.lab ? ' --lab' : ''} &    # app1 again: back in rotation within seconds
  bin/sempre-demo-app --host ${nextHost} --port ${p.app} --name app${next} &    # scale out: a new app …
  bin/sempre-agent --id app${next} --address ${nextHost} --app-host ${nextHost} --port ${p.app} --consul ${stack.consulUrl} &  # … and its agent
  kill $(jobs -p)                                     # stop what you started by hand (Ctrl-C here stops only what ./sempre up started)
  bin/sempre-balancer-reload --run-dir ${stack.balancerRunDir}   # reload the balancer: new code and options, no request lost
  kill -9 $(cat ${stack.balancerRunDir}/main.pid)     # crash the balancer: started again, its socket held (no connection refused)

Press Ctrl-C to stop everything.`);
  await new Promise<void>((resolve) => {
    void stack.balancer?.exited.then((info) => {
      if (!stopping) {
        say(`sempre: the balancer's socket keeper exited unexpectedly (code ${info.code}, signal ${info.signal}); see ${stack.balancer?.logFile}`);
        void stop('balancer gone').then(() => { process.exitCode = 1; resolve(); });
      }
    });
  });
});
