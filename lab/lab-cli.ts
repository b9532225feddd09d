// `./sempre lab up|down|status`: the multi-host lab (root needed).
import '../shared/closed-stdout.ts';
import { parseArgs } from 'node:util';
import { parseDurationMs } from '../shared/config/values.ts';
import { targetPid } from './app-restarts.ts';
import { isAlive, LAB_HEAL_AFTER_MS, LabError, labDown, labUp, readLabState, replaceApp, requireLab } from './netns-lab.ts';

const HELP = `Usage: sudo ./sempre lab up [--instances N] [--balancers 2] [--heal-after DURATION] | down | status [--json]
       sudo ./sempre lab restart-app HOST --version V [--unhealthy]

The multi-host lab: infra, app1, app2 and client, each in its own network
namespace with its own address on a private bridge (10.213.47.0/24, never
routed anywhere else). As on the real servers, infra, app1 and app2 each run a
Consul server from deploy/'s files (ACLs default-deny, gossip encrypted, the
tokens of \`sempre secrets\`); infra runs the balancer; each app host runs the
demo app and its agent (app3 and later: a Consul client). Each app runs
under a restarter that starts it again when it exits (systemd's
Restart=always on the servers), and its agent heals it when it stays hung.
The balancer runs under bin/sempre-socket-keeper (a .socket unit and
Restart=always): the keeper holds its listening sockets and starts it again
when it exits, with --run-dir .run/lab/balancer (main.pid, reload.json;
\`bin/sempre-balancer-reload --run-dir .run/lab/balancer\` reloads it).

  up       create the hosts and start everything (about 4 s); needs root.
           --balancers 2: a second balancer on app1, and keepalived on infra
           and app1 sharing the virtual address 10.213.47.10 (VRRP, unicast);
           each balancer binds its own sockets then (no keeper)
           --heal-after: how long an app must stay hung before its agent
           restarts it (default ${LAB_HEAL_AFTER_MS / 1000}s here; 20s in production)
  down     stop every lab process and remove the namespaces, the bridge and
           any nftables rule; safe to run again
  status   what is running (--json for scripts)
  restart-app HOST --version V
           stop HOST's app and start it at version V: the lab's stand-in for
           installing a release (what \`sempre deploy --restart\` runs in the
           lab); --unhealthy starts it with /healthz failing, a broken release

Examples:
  sudo ./sempre lab up
  curl -s http://10.213.47.1:8080/ | grep Hello       # the page, through the balancer on infra
  sudo ./sempre lab restart-app app1 --version 1.1.0
  sudo bin/sempre-balancer-reload --run-dir .run/lab/balancer   # reload infra's balancer (hitless)
  sudo ./sempre lab down
`;

const say = (line: string) => process.stdout.write(`${line}\n`);
const [command, ...rest] = process.argv.slice(2);
let values: { instances?: string; balancers?: string; 'heal-after'?: string; json?: boolean; help?: boolean; version?: string; unhealthy?: boolean };
let positionals: string[];
try {
  ({ values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: {
    instances: { type: 'string' }, balancers: { type: 'string' }, 'heal-after': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, version: { type: 'string' }, unhealthy: { type: 'boolean' },
  } }));
} catch (error) {
  process.stderr.write(`lab: ${(error as Error).message.split('\n')[0]} (see --help)\n`);
  process.exit(2);
}
if (values.help || !command || command === 'help' || command === '--help' || command === '-h') {
  process.stdout.write(HELP);
  process.exit(command || values.help ? 0 : 2);
}
const instances = Number(values.instances ?? '2');
if (!Number.isInteger(instances) || instances < 1 || instances > 9) {
  process.stderr.write(`lab.instances: must be a whole number from 1 to 9 (got ${JSON.stringify(values.instances)})\n`);
  process.exit(2);
}

const balancers = Number(values.balancers ?? '1');
if (balancers !== 1 && balancers !== 2) {
  process.stderr.write(`lab.balancers: must be 1 or 2 (got ${JSON.stringify(values.balancers)})\n`);
  process.exit(2);
}

const healAfterMs = parseDurationMs(values['heal-after'] ?? `${LAB_HEAL_AFTER_MS}ms`);
if (healAfterMs === undefined || healAfterMs < 1000 || healAfterMs > 3_600_000) {
  process.stderr.write(`lab.healAfter: must be a duration from 1s to 1h, such as 8s (got ${JSON.stringify(values['heal-after'])})\n`);
  process.exit(2);
}

try {
  if (command === 'up') {
    const started = Date.now();
    const state = await labUp({ instances, balancers, healAfterMs, say: (m) => say(`  · ${m}`) });
    say(`\nlab up (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    say(`  The page (from this machine): ${state.vipUrl ? `${state.vipUrl}   (virtual address; each balancer: ${state.url}, http://${state.hosts.app1!.address}:8080/)` : state.url}`);
    say(`  Dashboard:                    ${state.adminUrl}/dashboard/   (control token: ${state.adminToken})`);
    say(`  Consul UI:                    ${state.consulUrl}/ui/`);
    say(`  Hosts: ${Object.values(state.hosts).map((h) => `${h.name} ${h.address}`).join(', ')}`);
    say('\nTake it down with: sudo ./sempre lab down');
  } else if (command === 'restart-app') {
    const [host] = positionals;
    if (!host || !values.version) throw new LabError('restart-app needs a host and --version (see --help)');
    await replaceApp(requireLab(), host, values.version, Boolean(values.unhealthy));
    say(`${host}: app ${values.version} started${values.unhealthy ? ' (unhealthy, as asked)' : ''}`);
  } else if (command === 'down') {
    labDown(say);
  } else if (command === 'status') {
    const state = readLabState();
    if (!state) {
      say(values.json ? JSON.stringify({ up: false }) : 'the lab is not up');
    } else if (values.json) {
      say(JSON.stringify({ up: true, ...state, processes: Object.values(state.processes).map((p) => ({ ...p, running: isAlive(p.pid) })) }, null, 2));
    } else {
      say(`lab up since ${state.startedAt}: ${state.url}`);
      for (const p of Object.values(state.processes)) {
        const app = p.pidFile ? targetPid(p) : undefined;
        const [supervisor, child] = p.runDir ? ['socket keeper', 'main'] : ['restarter', 'app'];
        say(`  ${p.name.padEnd(14)} ${p.host.padEnd(7)} pid ${String(p.pid).padEnd(8)} ${isAlive(p.pid) ? 'running' : 'NOT RUNNING'}${p.pidFile ? ` (${supervisor}; ${child} pid ${app ?? '–'} ${app !== undefined && isAlive(app) ? 'running' : 'NOT RUNNING'})` : ''}`);
      }
    }
  } else {
    process.stderr.write(`lab: unknown command ${command}\n${HELP}`);
    process.exitCode = 2;
  }
} catch (error) {
  process.stderr.write(`lab: ${error instanceof LabError || error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
