// The company's page, as a stand-in: a dependency-free HTTP server that says
// which instance served it, answers /healthz, drains on SIGTERM and, only in
// lab mode, has a fault switch for drills (slow answers, HTTP 500s, failing
// health checks).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';

const HELP = `demo-app — a small page that names the instance that served it

Usage: bin/sempre-demo-app [options]   (runs demo-app/server.ts on the project's Node 24)

Options:
  --port PORT        port to listen on (env PORT; required)
  --host HOST        address to bind (env HOST; default 127.0.0.1)
  --name NAME        instance name shown on the page (env INSTANCE_NAME; default host:port)
  --version VERSION  version shown on the page and /healthz (env APP_VERSION; default 1.0.0)
  --lab              enable the fault switch at /_fault (env SEMPRE_LAB=1); never in production
  --start-unhealthy  with --lab: start with /healthz failing, as a broken release would (deploy drills)
  --start-delay MS   with --lab: listen only after this long, as a slow-starting app would
  --backlog N        the listen backlog (accept queue limit; default Node's 511)
  -h, --help         show this help

Endpoints:
  GET /…           a page naming the instance, for any path (x-app-path: the path it was asked for;
                   x-served-by is added by the balancer)
  GET /healthz     200 while serving, 503 while draining or when the lab fault "unhealthy" is on
  /_fault          lab mode only: GET shows the fault, PUT ?mode=slow&ms=800 | errors&rate=1 |
                   unhealthy | none sets it; PUT ?mode=busy (a busy loop) or ?mode=deadlock (the
                   main thread blocked, 0% CPU) hangs the process for good: only a restart ends it
                   (SEMPRE_HANG_ON_START=busy|deadlock hangs each start again, for budget drills)

Examples:
  bin/sempre-demo-app --port 3001 --name app1
  bin/sempre-demo-app --port 3001 --name app1 --lab
  curl -X PUT 'http://127.0.0.1:3001/_fault?mode=slow&ms=2000'   # with --lab
`;

type Fault = { mode: 'none' } | { mode: 'slow'; ms: number } | { mode: 'errors'; rate: number } | { mode: 'unhealthy' };

function fail(message: string): never {
  process.stderr.write(`demo-app: ${message}\n`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: {
      port: { type: 'string' }, host: { type: 'string' }, name: { type: 'string' }, version: { type: 'string' },
      lab: { type: 'boolean' }, 'start-unhealthy': { type: 'boolean' }, 'start-delay': { type: 'string' }, backlog: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
} catch (error) {
  fail(`${(error as Error).message.split('\n')[0]} (see --help)`);
}
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const port = Number(args.port ?? process.env.PORT);
if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`app.port: must be a whole number from 1 to 65535 (got ${JSON.stringify(args.port ?? process.env.PORT ?? null)})`);
const host = args.host ?? process.env.HOST ?? '127.0.0.1';
const name = args.name ?? process.env.INSTANCE_NAME ?? `${host}:${port}`;
const version = args.version ?? process.env.APP_VERSION ?? '1.0.0';
const lab = Boolean(args.lab) || process.env.SEMPRE_LAB === '1';

if (args['start-unhealthy'] && !lab) fail('app.start-unhealthy: only with --lab');
let fault: Fault = args['start-unhealthy'] ? { mode: 'unhealthy' } : { mode: 'none' };
let draining = false;
const startedAt = Date.now();

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(): string {
  const who = escapeHtml(name);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Served by ${who}</title></head><body style="font-family:system-ui,sans-serif;margin:3rem">
<h1>Hello from <span id="instance">${who}</span></h1>
<p>Version <span id="version">${escapeHtml(version)}</span>, up ${Math.round((Date.now() - startedAt) / 1000)} s.</p>
</body></html>\n`;
}

function send(res: ServerResponse, status: number, type: string, body: string, path?: string): void {
  // x-instance lets a load generator see who answered behind any proxy (sempre adds x-served-by
  // itself); x-app-version which release did (deploys).
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'x-instance': name, 'x-app-version': version, ...(path ? { 'x-app-path': path } : {}), ...(draining ? { connection: 'close' } : {}) });
  res.end(body);
}

function handleFault(req: IncomingMessage, res: ServerResponse, url: URL): void {
  if (req.method === 'PUT' || req.method === 'POST') {
    const mode = url.searchParams.get('mode');
    if (mode === 'slow') fault = { mode, ms: Math.max(0, Number(url.searchParams.get('ms') ?? 1000)) };
    else if (mode === 'errors') fault = { mode, rate: Math.min(1, Math.max(0, Number(url.searchParams.get('rate') ?? 1))) };
    else if (mode === 'unhealthy' || mode === 'none') fault = { mode };
    else if (mode === 'busy' || mode === 'deadlock') {
      send(res, 200, 'application/json', `${JSON.stringify({ mode })}\n`);
      process.stdout.write(`${JSON.stringify({ level: 40, time: new Date().toISOString(), name: 'demo-app', instance: name, fault: { mode }, msg: 'hanging for good' })}\n`);
      setTimeout(() => hang(mode), 50);
      return;
    } else return send(res, 400, 'text/plain', 'mode must be one of slow, errors, unhealthy, busy, deadlock, none\n');
    process.stdout.write(`${JSON.stringify({ level: 30, time: new Date().toISOString(), name: 'demo-app', instance: name, fault, msg: 'fault switched' })}\n`);
  }
  send(res, 200, 'application/json', `${JSON.stringify(fault)}\n`);
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app');
  if (url.pathname === '/healthz') {
    const ok = !draining && fault.mode !== 'unhealthy';
    return send(res, ok ? 200 : 503, 'text/plain', ok ? `ok ${name} ${version}\n` : `${draining ? 'draining' : 'unhealthy (lab fault)'}\n`);
  }
  if (url.pathname === '/_fault') {
    if (!lab) return send(res, 404, 'text/plain', 'not found\n');
    return handleFault(req, res, url);
  }
  const answer = () => {
    if (fault.mode === 'errors' && Math.random() < fault.rate) return send(res, 500, 'text/plain', `lab fault: error from ${name}\n`);
    // Any path: the demo app stands in for a whole site (or an API behind a path route).
    return send(res, 200, 'text/html; charset=utf-8', page(), url.pathname);
  };
  // Consume any request body before answering, so POSTs complete cleanly.
  req.resume();
  req.on('end', () => (fault.mode === 'slow' ? setTimeout(answer, fault.ms) : answer()));
});

/** Lab faults that never end by themselves: a busy loop (100% CPU), or the main thread blocked without CPU (a deadlock). */
function hang(mode: 'busy' | 'deadlock'): void {
  if (mode === 'deadlock') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  for (;;) { /* busy */ }
}

const backlog = args.backlog === undefined ? undefined : Number(args.backlog);
if (backlog !== undefined && (!Number.isInteger(backlog) || backlog < 1)) fail(`app.backlog: must be a whole number of at least 1 (got ${JSON.stringify(args.backlog)})`);
const startDelay = Number(args['start-delay'] ?? 0);
if (!Number.isFinite(startDelay) || startDelay < 0 || (startDelay > 0 && !lab)) fail(`app.start-delay: a number of milliseconds, only with --lab (got ${JSON.stringify(args['start-delay'])})`);
setTimeout(() => server.listen({ port, host, ...(backlog ? { backlog } : {}) }, () => {
  process.stdout.write(`${JSON.stringify({ level: 30, time: new Date().toISOString(), name: 'demo-app', instance: name, version, lab, msg: `listening on http://${host}:${port}` })}\n`);
  const onStart = process.env.SEMPRE_HANG_ON_START;
  if (lab && (onStart === 'busy' || onStart === 'deadlock')) setTimeout(() => hang(onStart), 5000);
}), startDelay);
server.on('error', (error) => fail(`cannot listen on ${host}:${port}: ${error.message}`));

function drain(signal: string): void {
  if (draining) process.exit(0); // a second signal: exit now
  draining = true;
  process.stdout.write(`${JSON.stringify({ level: 30, time: new Date().toISOString(), name: 'demo-app', instance: name, signal, msg: 'draining: finishing in-flight requests' })}\n`);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 10_000).unref();
}
process.on('SIGTERM', () => drain('SIGTERM'));
process.on('SIGINT', () => drain('SIGINT'));
