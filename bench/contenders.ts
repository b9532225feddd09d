// The proxies sempre is measured against, each started by the bench inside
// the lab's infra host with a configuration generated for the same instances.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../lab/consul-binary.ts';
import { BALANCER_NODE_FLAGS } from '../lab/balancer-node-flags.ts';
import { appHosts, hostAddress, isAlive, startInHost, type LabState } from '../lab/netns-lab.ts';
import { waitFor } from '../lab/processes.ts';
import { labFront } from '../drill/faults/balancer-control.ts';
import type { Front } from '../drill/faults/fault.ts';
import { peerFront } from './peer-front.ts';

export interface Contender {
  name: string;
  description: string;
  /** Where the load goes. */
  url(lab: LabState): string;
  start(lab: LabState): Promise<void>;
  stop(lab: LabState): Promise<void>;
  /** How balancer-reload and balancer-restart act on it (absent: those faults are not measured for it). */
  front?(lab: LabState): Front;
}

export interface PaperContender {
  name: string;
  description: string;
  failover: string;
}

const CONFIG_DIR = join(PROJECT_ROOT, '.run', 'lab', 'bench');
const infra = () => hostAddress('infra');
const apps = (lab: LabState) => appHosts(lab).sort().map((h) => `${hostAddress(h)}:3000`);

async function waitAnswering(url: string): Promise<void> {
  await waitFor(`${url} to answer`, async () => (await fetch(url, { signal: AbortSignal.timeout(1000) })).status < 500, 15_000);
}

/** With `reloadSignal`, the contender can be reloaded (that signal to its master) and restarted (bench/peer-front.ts). */
function processContender(name: string, description: string, port: number, config: (lab: LabState) => string, command: (file: string, lab: LabState) => string[], reloadSignal?: NodeJS.Signals): Contender {
  return {
    name,
    description,
    url: () => `http://${infra()}:${port}/`,
    ...(reloadSignal ? { front: (lab: LabState) => peerFront(lab, name, `bench-${name}`, `http://${infra()}:${port}/`, reloadSignal) } : {}),
    async start(lab) {
      mkdirSync(CONFIG_DIR, { recursive: true });
      const file = join(CONFIG_DIR, `${name}.conf`);
      writeFileSync(file, config(lab));
      startInHost(lab, 'infra', `bench-${name}`, command(file, lab));
      await waitAnswering(`http://${infra()}:${port}/`);
    },
    async stop(lab) {
      // SIGTERM: nginx's master also stops its workers (SIGKILL would orphan them).
      const proc = lab.processes[`bench-${name}`];
      if (!proc || !isAlive(proc.pid)) return;
      process.kill(proc.pid, 'SIGTERM');
      await waitFor(`${name} to stop`, () => !isAlive(proc.pid), 5000).catch(() => process.kill(proc.pid, 'SIGKILL'));
      await waitFor(`${name}'s port to close`, async () => (await fetch(`http://${infra()}:${port}/`, { signal: AbortSignal.timeout(500) }).then(() => false, () => true)), 5000);
    },
  };
}

// Master-worker mode (-W, as Debian's unit runs it: -Ws) so that a reload is
// seamless: kill -USR2 to the master, whose new worker takes the listening
// sockets over from the old one (the master passes -x itself; the stats
// socket exposes them too, as HAProxy's docs for seamless reloads say).
const haproxyGlobal = (name: string) => `global
  maxconn 8000
  pidfile ${join(CONFIG_DIR, `${name}.pid`)}
  stats socket ${join(CONFIG_DIR, `${name}.sock`)} mode 600 level admin expose-fd listeners
`;
const haproxyCommand = (name: string) => (file: string) => ['haproxy', '-W', '-db', '-S', join(CONFIG_DIR, `${name}-master.sock`), '-f', file];

export const CONTENDERS: readonly Contender[] = [
  {
    name: 'sempre',
    description: 'sempre-balancer with its defaults (one worker process under its main process) but no per-client rate limit (the load comes from one address), the lab\'s own',
    url: (lab) => lab.url,
    start: async () => undefined,
    stop: async () => undefined,
    front: labFront,
  },
  processContender('sempre-cluster', 'sempre-balancer with `--workers 2` (two worker processes, one per core, on the socket their main process holds) and `--rate-limit 0`, same defaults otherwise', 8094, () => '', () => [process.execPath, ...BALANCER_NODE_FLAGS, join(PROJECT_ROOT, 'balancer/main.ts'), '--service', 'web', '--host', infra(), '--port', '8094',
    '--admin-host', infra(), '--admin-port', '8095', '--consul', 'http://127.0.0.1:8500', '--workers', '2', '--rate-limit', '0', '--log-format', 'json']),
  processContender('haproxy-stock', 'HAProxy 2.6 (Debian) in master-worker mode (-W), static servers with only `check`, Debian\'s default timeouts', 8090, (lab) => `${haproxyGlobal('haproxy-stock')}
defaults
  mode http
  timeout connect 5s
  timeout client 50s
  timeout server 50s
frontend fe
  bind ${infra()}:8090
  default_backend be
backend be
  balance roundrobin
${apps(lab).map((a, i) => `  server app${i + 1} ${a} check`).join('\n')}
`, haproxyCommand('haproxy-stock'), 'SIGUSR2'),
  processContender('haproxy-consul', 'HAProxy 2.6 (-W) with the same discovery: Consul DNS `server-template`, fast checks, `observe layer7`, `redispatch`, `retry-on` (tuned)', 8091, () => `${haproxyGlobal('haproxy-consul')}
resolvers consul
  nameserver consul 127.0.0.1:8600
  accepted_payload_size 8192
  resolve_retries 3
  timeout resolve 1s
  timeout retry 1s
  hold valid 1s
  hold other 1s
  hold refused 1s
  hold nx 1s
  hold timeout 1s
  hold obsolete 1s
defaults
  mode http
  timeout connect 500ms
  timeout client 30s
  timeout server 5s
  retries 2
  option redispatch 1
  retry-on conn-failure empty-response response-timeout 500 502 503 504
frontend fe
  bind ${infra()}:8091
  default_backend be
backend be
  balance roundrobin
  option httpchk GET /healthz
  default-server check inter 500ms fall 2 rise 2 observe layer7 error-limit 1 on-error mark-down
  server-template web 5 _web._tcp.service.consul resolvers consul resolve-prefer ipv4 init-addr none
`, haproxyCommand('haproxy-consul'), 'SIGUSR2'),
  processContender('nginx-stock', 'Nginx 1.22 (Debian), `upstream` + `proxy_pass`, static servers, defaults', 8092, (lab) => nginxConfig('nginx-stock', 8092, apps(lab).map((a) => `server ${a};`), ''), (file) => ['nginx', '-c', file, '-p', CONFIG_DIR], 'SIGHUP'),
  processContender('nginx-tuned', 'Nginx 1.22 tuned: `max_fails=1`, `proxy_next_upstream` on errors/timeouts/5xx, short timeouts, upstream keep-alive', 8093, (lab) => nginxConfig('nginx-tuned', 8093, [...apps(lab).map((a) => `server ${a} max_fails=1 fail_timeout=2s;`), 'keepalive 64;'], `
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout 500ms;
      proxy_read_timeout 1s;
      proxy_next_upstream error timeout http_500 http_502 http_503 http_504;
      proxy_next_upstream_tries 3;`), (file) => ['nginx', '-c', file, '-p', CONFIG_DIR], 'SIGHUP'),
];

function nginxConfig(name: string, port: number, upstream: string[], proxyExtra: string): string {
  const tmp = join(CONFIG_DIR, `${name}-tmp`);
  mkdirSync(tmp, { recursive: true });
  return `daemon off;
worker_processes auto;
pid ${join(CONFIG_DIR, `${name}.pid`)};
error_log ${join(CONFIG_DIR, `${name}-error.log`)} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fastcgi; uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  upstream be {
    ${upstream.join('\n    ')}
  }
  server {
    listen ${hostAddress('infra')}:${port};
    location / {
      proxy_pass http://be;${proxyExtra}
    }
  }
}
`;
}

/**
 * The per-core contenders: one sempre process and HAProxy with one thread,
 * each pinned to core 1 (the load generator and the apps run on core 0), so
 * the same core's throughput is compared, not how each uses a whole machine.
 * The third is the floor under sempre: bench/bare-proxy.ts, Node's HTTP
 * server and undici's Pool.dispatch with no feature at all, on the same Node
 * flags; what it cannot reach, no change to sempre's own code can.
 */
export const PER_CORE_NAMES = { haproxy: 'haproxy-1core', sempre: 'sempre-1core', floor: 'node-floor-1core' } as const;

export const PER_CORE: readonly Contender[] = [
  processContender(PER_CORE_NAMES.haproxy, 'HAProxy 2.6, `nbthread 1`, pinned to core 1, static servers, keep-alive to the apps', 8097, (lab) => `global
  maxconn 8000
  nbthread 1
  pidfile ${join(CONFIG_DIR, `${PER_CORE_NAMES.haproxy}.pid`)}
defaults
  mode http
  option http-keep-alive
  timeout connect 500ms
  timeout client 30s
  timeout server 60s
frontend fe
  bind ${infra()}:8097
  default_backend be
backend be
  balance roundrobin
${apps(lab).map((a, i) => `  server app${i + 1} ${a}`).join('\n')}
`, (file) => ['taskset', '-c', '1', 'haproxy', '-f', file, '-db']),
  processContender(PER_CORE_NAMES.sempre, 'one sempre-balancer process (its defaults, `--rate-limit 0`), pinned to core 1', 8096, () => '', () => ['taskset', '-c', '1', process.execPath, ...BALANCER_NODE_FLAGS, join(PROJECT_ROOT, 'balancer/main.ts'), '--service', 'web', '--host', infra(), '--port', '8096',
    '--admin-host', infra(), '--admin-port', '8098', '--consul', 'http://127.0.0.1:8500', '--rate-limit', '0', '--log-format', 'json']),
  processContender(PER_CORE_NAMES.floor, 'the floor: bench/bare-proxy.ts (Node\'s HTTP server, undici\'s `Pool.dispatch`, round robin, no log, health, retries or counters), same Node flags, pinned to core 1', 8099, () => '', (_file, lab) => ['taskset', '-c', '1', process.execPath, ...BALANCER_NODE_FLAGS, join(PROJECT_ROOT, 'bench/bare-proxy.ts'), `${infra()}:8099`, ...apps(lab).map((a) => `http://${a}`)]),
];

/** Direct to one instance: the reference for overhead only. */
export const DIRECT = { name: 'direct', description: 'no balancer: straight to app1 (overhead reference only)', url: () => `http://${hostAddress('app1')}:3000/` };

/** Discovery-driven peers with no package for this platform: their documented behaviour. */
export const NOT_MEASURED: readonly PaperContender[] = [
  { name: 'Fabio', description: 'Consul-native router (not measured: no Debian or npm package)', failover: 'never retries a failed request (fabio issue #704); exits at start if Consul is unreachable' },
  { name: 'Traefik', description: 'Consul catalog provider (not measured)', failover: 'polls Consul every 15 s by default; retries only with the retry middleware, possibly on the same server' },
  { name: 'GoBetween', description: 'L4 balancer with Consul discovery (not measured)', failover: 'Consul discovery never refreshes unless `interval` is set' },
];
