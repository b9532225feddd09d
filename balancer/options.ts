import type { CommandSpec, OptionValues } from '../shared/config/options.ts';
import { boolean, duration, host, httpBaseUrl, integer, list, name, oneOf, optionalHttpUrl, port, readableFile, text } from '../shared/config/values.ts';
import { loggingOptions } from '../shared/config/logging-options.ts';

const options = {
  service: { flag: 'service', env: 'SEMPRE_SERVICE', placeholder: 'NAME', default: 'web', description: 'Consul service whose healthy instances receive traffic', schema: name('service name') },
  host: { flag: 'host', env: 'SEMPRE_HOST', placeholder: 'ADDR', default: '0.0.0.0', description: 'address the public listener binds', schema: host({ allowEmpty: false }) },
  port: { flag: 'port', env: 'SEMPRE_PORT', placeholder: 'PORT', default: '8080', description: 'port of the public listener', schema: port() },
  adminHost: { flag: 'admin-host', env: 'SEMPRE_ADMIN_HOST', placeholder: 'ADDR', default: '127.0.0.1', description: 'address of the admin listener (status, metrics); loopback unless you ask', schema: host({ allowEmpty: false }) },
  adminPort: { flag: 'admin-port', env: 'SEMPRE_ADMIN_PORT', placeholder: 'PORT', default: '8081', description: 'port of the admin listener: /_sempre/status and /metrics', schema: port() },
  adminToken: { flag: 'admin-token', env: 'SEMPRE_ADMIN_TOKEN', placeholder: 'TOKEN', default: '', description: 'token the dashboard needs for its controls (maintenance); empty: a random one is generated and logged at start', secret: true, schema: text(256) },
  consul: { flag: 'consul', env: 'CONSUL_HTTP_ADDR', placeholder: 'URL', default: 'http://127.0.0.1:8500', description: 'Consul agent HTTP address', schema: httpBaseUrl() },
  consulToken: { flag: 'consul-token', env: 'CONSUL_HTTP_TOKEN', placeholder: 'TOKEN', default: '', description: 'Consul ACL token allowed to read the service health', secret: true, schema: text(128) },
  strategy: { flag: 'strategy', env: 'SEMPRE_STRATEGY', placeholder: 'NAME', default: 'least-outstanding', description: 'least-outstanding (fewest requests in flight) or round-robin', schema: oneOf(['least-outstanding', 'round-robin'] as const) },
  retries: { flag: 'retries', env: 'SEMPRE_RETRIES', placeholder: 'N', default: '2', description: 'further attempts on other instances after a failed one', schema: integer(0, 10) },
  retryOnStatus: { flag: 'retry-on-status', env: 'SEMPRE_RETRY_ON_STATUS', placeholder: 'CODES', default: '500,502,503,504', description: 'upstream statuses retried for idempotent requests (empty: none)', schema: list(/^5\d\d$/, 'HTTP 5xx status codes') },
  connectTimeout: { flag: 'connect-timeout', env: 'SEMPRE_CONNECT_TIMEOUT', placeholder: 'DURATION', default: '500ms', description: 'give up connecting to an instance after this long (nothing was sent: retried for any method)', schema: duration(10, 60_000) },
  responseTimeout: { flag: 'response-timeout', env: 'SEMPRE_RESPONSE_TIMEOUT', placeholder: 'DURATION', default: '5s', description: 'give up waiting for response headers after this long', schema: duration(50, 600_000) },
  clientIdleTimeout: { flag: 'client-idle-timeout', env: 'SEMPRE_CLIENT_IDLE_TIMEOUT', placeholder: 'DURATION', default: '30s', description: 'close an idle client keep-alive connection after this long', schema: duration(1000, 600_000) },
  upstreamIdleTimeout: { flag: 'upstream-idle-timeout', env: 'SEMPRE_UPSTREAM_IDLE_TIMEOUT', placeholder: 'DURATION', default: '4s', description: "close an idle connection to an instance after this long (keep below the app's keep-alive timeout; Node's is 5s)", schema: duration(100, 600_000) },
  ejectAfter: { flag: 'eject-after', env: 'SEMPRE_EJECT_AFTER', placeholder: 'N', default: '1', description: 'consecutive connection failures or timeouts before the balancer ejects an instance on its own', schema: integer(1, 100) },
  ejectFor: { flag: 'eject-for', env: 'SEMPRE_EJECT_FOR', placeholder: 'DURATION', default: '1s', description: 'least time an ejected instance stays out; then its health path is probed until it answers', schema: duration(100, 600_000) },
  stallAfter: { flag: 'stall-after', env: 'SEMPRE_STALL_AFTER', placeholder: 'DURATION', default: '400ms', description: 'suspect an instance whose oldest request waited this long with no answer from it at all; eject it if its health probe is silent too (0: off)', schema: duration(0, 600_000) },
  stallProbeTimeout: { flag: 'stall-probe-timeout', env: 'SEMPRE_STALL_PROBE_TIMEOUT', placeholder: 'DURATION', default: '300ms', description: 'how long a suspected instance has to answer its health probe', schema: duration(10, 60_000) },
  slowStart: { flag: 'slow-start', env: 'SEMPRE_SLOW_START', placeholder: 'DURATION', default: '3s', description: 'a joining or returning instance ramps from 10% to its full share over this long (0: off)', schema: duration(0, 600_000) },
  consulWait: { flag: 'consul-wait', env: 'SEMPRE_CONSUL_WAIT', placeholder: 'DURATION', default: '30s', description: 'how long one blocking query to Consul may wait for a change (a silent Consul is noticed after this plus 5s)', schema: duration(1000, 300_000) },
  consulGrace: { flag: 'consul-grace', env: 'SEMPRE_CONSUL_GRACE', placeholder: 'DURATION', default: '3s', description: 'after Consul comes back, keep instances it has not re-listed yet for this long (agents re-register)', schema: duration(0, 60_000) },
  maxReplayBody: { flag: 'max-replay-body', env: 'SEMPRE_MAX_REPLAY_BODY', placeholder: 'BYTES', default: '1048576', description: 'request bodies up to this size are kept so the request can be retried; larger ones are streamed, not retried', schema: integer(0, 64 * 1024 * 1024) },
  maxConnections: { flag: 'max-connections', env: 'SEMPRE_MAX_CONNECTIONS', placeholder: 'N', default: '10000', description: 'client connections open at once; more are closed at once', schema: integer(1, 1_000_000) },
  maxConnectionsPerClient: { flag: 'max-connections-per-client', env: 'SEMPRE_MAX_CONNECTIONS_PER_CLIENT', placeholder: 'N', default: '256', description: 'connections open at once from one client address (slowloris); 0: no limit', schema: integer(0, 1_000_000) },
  rateLimit: { flag: 'rate-limit', env: 'SEMPRE_RATE_LIMIT', placeholder: 'N', default: '1000', description: 'requests a second from one client address before it gets 429 (a token bucket); 0: no limit. Per worker process', schema: integer(0, 10_000_000) },
  rateBurst: { flag: 'rate-burst', env: 'SEMPRE_RATE_BURST', placeholder: 'N', default: '2000', description: 'requests one client address may send at once above --rate-limit', schema: integer(1, 10_000_000) },
  headersTimeout: { flag: 'headers-timeout', env: 'SEMPRE_HEADERS_TIMEOUT', placeholder: 'DURATION', default: '10s', description: 'a client must send its whole request head within this (slowloris); answered 408', schema: duration(1000, 600_000) },
  requestTimeout: { flag: 'request-timeout', env: 'SEMPRE_REQUEST_TIMEOUT', placeholder: 'DURATION', default: '60s', description: 'a client must send its whole request, body included, within this; answered 408', schema: duration(1000, 3_600_000) },
  maxHeaderSize: { flag: 'max-header-size', env: 'SEMPRE_MAX_HEADER_SIZE', placeholder: 'BYTES', default: '16384', description: 'largest request head (request line and headers); larger gets 431', schema: integer(1024, 1024 * 1024) },
  maxBody: { flag: 'max-body', env: 'SEMPRE_MAX_BODY', placeholder: 'BYTES', default: '10485760', description: 'largest Content-Length accepted; larger gets 413 without reading it (0: no limit)', schema: integer(0, 1024 * 1024 * 1024) },
  maxPerInstance: { flag: 'max-per-instance', env: 'SEMPRE_MAX_PER_INSTANCE', placeholder: 'N', default: '512', description: 'requests in flight on one instance at most, so a slow one cannot exhaust the balancer; when all are full: 503 (0: no limit)', schema: integer(0, 1_000_000) },
  tlsCert: { flag: 'tls-cert', env: 'SEMPRE_TLS_CERT', placeholder: 'FILE', default: '', description: 'PEM certificate chain: serve HTTPS (TLS 1.2 and 1.3 only) on --port', schema: readableFile() },
  tlsKey: { flag: 'tls-key', env: 'SEMPRE_TLS_KEY', placeholder: 'FILE', default: '', description: 'PEM private key for --tls-cert', secret: true, schema: readableFile() },
  http2: { flag: 'http2', env: 'SEMPRE_HTTP2', placeholder: 'BOOL', default: 'false', description: 'with TLS, offer HTTP/2 to clients (ALPN h2); HTTP/1.1 clients are still served. The instances are always spoken to in HTTP/1.1', schema: boolean() },
  shutdownTimeout: { flag: 'shutdown-timeout', env: 'SEMPRE_SHUTDOWN_TIMEOUT', placeholder: 'DURATION', default: '10s', description: 'on SIGTERM, wait this long for in-flight requests', schema: duration(0, 600_000) },
  workers: { flag: 'workers', env: 'SEMPRE_WORKERS', placeholder: 'N', default: '1', description: 'processes sharing the public port (node:cluster); 0 = one per CPU. Worker 0 also serves the admin listener, so status, metrics and the dashboard show its share', schema: integer(0, 64) },
  alertWebhook: { flag: 'alert-webhook', env: 'SEMPRE_ALERT_WEBHOOK', placeholder: 'URL', default: '', description: 'POST an alert here when an instance leaves rotation unplanned and when it serves again, with the cause (empty: no alerts)', secret: true, schema: optionalHttpUrl() },
  alertFormat: { flag: 'alert-format', env: 'SEMPRE_ALERT_FORMAT', placeholder: 'NAME', default: 'json', description: 'json (sempre\'s own fields) or slack (an incoming-webhook {"text": …} body)', schema: oneOf(['json', 'slack'] as const) },
  alertTimeout: { flag: 'alert-timeout', env: 'SEMPRE_ALERT_TIMEOUT', placeholder: 'DURATION', default: '3s', description: 'give up on one webhook call after this long (each alert is tried 4 times)', schema: duration(100, 60_000) },
  accessLog: { flag: 'access-log', env: 'SEMPRE_ACCESS_LOG', placeholder: 'BOOL', default: 'true', description: 'log one line per proxied request', schema: boolean() },
  ...loggingOptions,
};

export type BalancerOptionsSpec = typeof options;
export type BalancerOptions = OptionValues<BalancerOptionsSpec>;

export const balancerCommand: CommandSpec<BalancerOptionsSpec> = {
  command: 'sempre-balancer',
  section: 'balancer',
  summary: "proxies to the healthy instances Consul lists, retrying on another one when one fails",
  options,
  rules: [
    (o) => (o.port === o.adminPort ? { field: 'adminPort', message: `must differ from balancer.port (both ${o.port})` } : undefined),
    (o) => (o.headersTimeout > o.requestTimeout ? { field: 'headersTimeout', message: `must not exceed balancer.requestTimeout (${o.requestTimeout} ms)` } : undefined),
    (o) => (o.http2 && !o.tlsCert ? { field: 'http2', message: 'needs TLS: browsers speak HTTP/2 only over TLS (set --tls-cert and --tls-key)' } : undefined),
    (o) => (Boolean(o.tlsCert) !== Boolean(o.tlsKey) ? { field: o.tlsCert ? 'tlsKey' : 'tlsCert', message: 'HTTPS needs both --tls-cert and --tls-key' } : undefined),
  ],
  examples: [
    'sempre-balancer                                         # :8080 for service "web", Consul on 127.0.0.1:8500',
    'sempre-balancer --port 80 --service web --consul http://10.0.1.5:8500',
    'sempre-balancer --strategy round-robin --retries 1 --response-timeout 2s',
    'curl -s http://127.0.0.1:8081/_sempre/status | jq .instances   # who is serving',
    'sempre-balancer --port 443 --tls-cert /etc/sempre/tls/fullchain.pem --tls-key /etc/sempre/tls/privkey.pem',
    'sempre-balancer --rate-limit 50 --rate-burst 100 --max-connections-per-client 64   # a stricter front door',
    'sempre-balancer --alert-webhook https://hooks.slack.com/services/T000/B000/XXXX --alert-format slack',
  ],
  notes: [
    'Requests are retried on another instance when the connection was never established (any method),',
    'and for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) also on reset, response timeout and',
    'the --retry-on-status codes. A POST that may have reached the app is never retried.',
  ],
};
