import { hostname } from 'node:os';
import type { CommandSpec, OptionValues } from '../shared/config/options.ts';
import { boolean, duration, host, httpBaseUrl, integer, keyValues, list, name, oneOf, port, routeList, text, urlPath } from '../shared/config/values.ts';
import { loggingOptions } from '../shared/config/logging-options.ts';

const options = {
  service: { flag: 'service', env: 'SEMPRE_SERVICE', placeholder: 'NAME', default: 'web', description: 'service name the balancer routes to', schema: name('service name') },
  id: { flag: 'id', env: 'SEMPRE_ID', placeholder: 'ID', default: '', description: 'instance ID, unique in the cluster; empty: SERVICE-HOSTNAME-PORT', schema: text(128) },
  address: { flag: 'address', env: 'SEMPRE_ADDRESS', placeholder: 'HOST', default: '', description: "address the balancer uses to reach the app (empty: the Consul node's address)", schema: host({ allowEmpty: true }) },
  port: { flag: 'port', env: 'SEMPRE_PORT', placeholder: 'PORT', description: 'port the app listens on', schema: port() },
  appHost: { flag: 'app-host', env: 'SEMPRE_APP_HOST', placeholder: 'HOST', default: '127.0.0.1', description: 'where the agent itself reaches the app for health probes', schema: host({ allowEmpty: false }) },
  healthPath: { flag: 'health-path', env: 'SEMPRE_HEALTH_PATH', placeholder: 'PATH', default: '/healthz', description: "the app's health endpoint; 2xx means healthy", schema: urlPath() },
  checkInterval: { flag: 'check-interval', env: 'SEMPRE_CHECK_INTERVAL', placeholder: 'DURATION', default: '1s', description: 'how often the app is probed and the TTL renewed', schema: duration(100, 60_000) },
  recheckInterval: { flag: 'recheck-interval', env: 'SEMPRE_RECHECK_INTERVAL', placeholder: 'DURATION', default: '200ms', description: 'while the app is unhealthy, how often it is probed (at most --check-interval), so it is back in rotation soon after it answers again; Consul hears of a change at once', schema: duration(50, 60_000) },
  probeTimeout: { flag: 'probe-timeout', env: 'SEMPRE_PROBE_TIMEOUT', placeholder: 'DURATION', default: '800ms', description: 'a probe slower than this counts as failed', schema: duration(10, 60_000) },
  ttl: { flag: 'ttl', env: 'SEMPRE_TTL', placeholder: 'DURATION', default: '3s', description: 'Consul marks the instance critical when no heartbeat comes for this long (agent crashed)', schema: duration(1000, 600_000) },
  deregisterAfter: { flag: 'deregister-after', env: 'SEMPRE_DEREGISTER_AFTER', placeholder: 'DURATION', default: '1m', description: 'Consul removes an instance critical for this long (Consul minimum: 1m)', schema: duration(60_000, 7 * 24 * 3_600_000) },
  drain: { flag: 'drain', env: 'SEMPRE_DRAIN', placeholder: 'DURATION', default: '2s', description: 'on SIGTERM, time between leaving rotation and deregistering, so in-flight requests finish', schema: duration(0, 300_000) },
  consul: { flag: 'consul', env: 'CONSUL_HTTP_ADDR', placeholder: 'URL', default: 'http://127.0.0.1:8500', description: 'Consul agent HTTP address', schema: httpBaseUrl() },
  consulToken: { flag: 'consul-token', env: 'CONSUL_HTTP_TOKEN', placeholder: 'TOKEN', default: '', description: 'Consul ACL token allowed to register this service', secret: true, schema: text(128) },
  tags: { flag: 'tags', env: 'SEMPRE_TAGS', placeholder: 'A,B', default: '', description: 'Consul tags, comma-separated', schema: list(/^[\x21-\x7e]{1,128}$/, 'tags without spaces') },
  meta: { flag: 'meta', env: 'SEMPRE_META', placeholder: 'K=V,…', default: '', description: 'Consul service meta, e.g. version=1.4.2', schema: keyValues() },
  routes: { flag: 'route', env: 'SEMPRE_ROUTES', placeholder: 'ROUTE', default: '', repeatable: true, description: 'what this service answers, for a balancer run with --routing routes: host/ (shop.example.com/, *.example.com/), /path (/api), or host/path; ;strip takes the path prefix off (/api;strip)', schema: routeList() },
  sticky: { flag: 'sticky', env: 'SEMPRE_STICKY', placeholder: 'BOOL', default: 'false', description: 'ask the balancers to keep each client on this service\'s same instance (sticky cookie), for apps that keep sessions in memory', schema: boolean() },
  deregisterOnStop: { flag: 'deregister-on-stop', env: 'SEMPRE_DEREGISTER_ON_STOP', placeholder: 'BOOL', default: 'true', description: 'on SIGTERM, deregister after draining (false: stay in maintenance)', schema: boolean() },
  heal: { flag: 'heal', env: 'SEMPRE_HEAL', placeholder: 'BOOL', default: 'false', description: 'restart the app when it stays hung (no answer, refused, reset) for --heal-after: one instance of the service at a time (a lock in Consul), evidence first; needs --app-unit, --app-pid-file or --heal-command', schema: boolean() },
  healAfter: { flag: 'heal-after', env: 'SEMPRE_HEAL_AFTER', placeholder: 'DURATION', default: '20s', description: 'how long the app must fail in a way a restart can fix before it is restarted', schema: duration(1000, 3_600_000) },
  healGrace: { flag: 'heal-grace', env: 'SEMPRE_HEAL_GRACE', placeholder: 'DURATION', default: '60s', description: 'after a restart, how long the app has to pass again (a slow start) before a failure counts again; the heal lock is held until it passes or this ends', schema: duration(1000, 3_600_000) },
  healOnError: { flag: 'heal-on-error', env: 'SEMPRE_HEAL_ON_ERROR', placeholder: 'BOOL', default: 'false', description: 'also restart an app whose health endpoint answers an error status (off: it says a dependency is down, and a restart, on every instance at once, would not help)', schema: boolean() },
  healBudget: { flag: 'heal-budget', env: 'SEMPRE_HEAL_BUDGET', placeholder: 'N', default: '3', description: 'restarts of this instance at most per --heal-window; then the agent stops and reports that a person is needed', schema: integer(1, 100) },
  healWindow: { flag: 'heal-window', env: 'SEMPRE_HEAL_WINDOW', placeholder: 'DURATION', default: '1h', description: 'the window of --heal-budget', schema: duration(60_000, 7 * 24 * 3_600_000) },
  healConcurrency: { flag: 'heal-concurrency', env: 'SEMPRE_HEAL_CONCURRENCY', placeholder: 'N', default: '1', description: 'instances of the service being restarted at once at most, across hosts (through Consul)', schema: integer(1, 100) },
  appUnit: { flag: 'app-unit', env: 'SEMPRE_APP_UNIT', placeholder: 'UNIT', default: '', description: "the app's systemd unit: its PID for the evidence, its journal, and the heal restarts it with sudo -n /usr/bin/systemctl restart UNIT (deploy/sudoers)", schema: text(256) },
  appPidFile: { flag: 'app-pid-file', env: 'SEMPRE_APP_PID_FILE', placeholder: 'FILE', default: '', description: "a file with the app's PID (local stack, lab): the heal kills it, and what started it starts it again", schema: text(4096) },
  appLog: { flag: 'app-log', env: 'SEMPRE_APP_LOG', placeholder: 'FILE', default: '', description: "the app's log file, whose last lines go into the evidence (default with --app-unit: its journal)", schema: text(4096) },
  healCommand: { flag: 'heal-command', env: 'SEMPRE_HEAL_COMMAND', placeholder: 'CMD', default: '', description: 'restart the app with this shell command instead (SEMPRE_APP_PID in its environment)', schema: text(4096) },
  evidenceDir: { flag: 'evidence-dir', env: 'SEMPRE_EVIDENCE_DIR', placeholder: 'DIR', default: 'evidence', description: 'where the evidence of each heal is kept (JSON, one file per heal)', schema: text(4096) },
  evidenceKeep: { flag: 'evidence-keep', env: 'SEMPRE_EVIDENCE_KEEP', placeholder: 'N', default: '20', description: 'evidence files kept per instance (the oldest go)', schema: integer(1, 10_000) },
  ...loggingOptions,
};

export type AgentOptionsSpec = typeof options;
export type AgentOptions = OptionValues<AgentOptionsSpec>;

export const agentCommand: CommandSpec<AgentOptionsSpec> = {
  command: 'sempre-agent',
  section: 'agent',
  summary: 'registers one app instance with Consul and heartbeats while the app is healthy',
  options,
  rules: [
    (o) => (o.ttl < 2 * o.checkInterval ? { field: 'ttl', message: `must be at least twice agent.checkInterval so one late heartbeat is not an outage (ttl ${o.ttl}ms, checkInterval ${o.checkInterval}ms)` } : undefined),
    (o) => (o.probeTimeout > o.checkInterval ? { field: 'probeTimeout', message: `must not be longer than agent.checkInterval (probeTimeout ${o.probeTimeout}ms, checkInterval ${o.checkInterval}ms)` } : undefined),
    (o) => (o.heal && !o.appUnit && !o.appPidFile && !o.healCommand ? { field: 'heal', message: 'needs a way to restart the app: --app-unit (systemd), --app-pid-file (the local stack) or --heal-command' } : undefined),
  ],
  examples: [
    'bin/sempre-agent --port 3000                               # app on :3000 of this host, service "web"',
    'bin/sempre-agent --service web --port 3000 --address 10.0.1.11 --meta version=1.4.2',
    'SEMPRE_PORT=3000 CONSUL_HTTP_ADDR=http://10.0.1.5:8500 bin/sempre-agent',
    'bin/sempre-agent --port 3000 --sticky true                 # the app keeps sessions in memory',
    'bin/sempre-agent --service shop --port 3001 --route shop.example.com/     # routed by host (balancer --routing routes)',
    "bin/sempre-agent --service api --port 3002 --route '/api;strip' --route api.example.com/",
    'bin/sempre-agent --config /etc/sempre/agent.json --print-config  # check a config file',
    'bin/sempre-agent --port 3000 --heal true --app-unit sempre-app.service   # restart the app when it stays hung 20 s',
  ],
  notes: [
    'Run it from the repository (bin/sempre-agent uses the Node 24 that npm ci installs); on the servers',
    'the unit runs /opt/sempre/bin/sempre-agent.',
    'On SIGTERM or SIGINT the agent puts the instance in maintenance (the balancer stops sending within',
    'a second), waits --drain, deregisters and exits 0. A second signal exits at once.',
  ],
};

/** Fills in what depends on the host: the default instance ID. */
export function defaultInstanceId(options: AgentOptions): string {
  return options.id || `${options.service}-${hostname().split('.')[0]}-${options.port}`;
}
