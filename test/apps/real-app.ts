// An ordinary web app, written the way a company would write it, to put
// behind sempre in the tests of issue 11: Express with express-session's
// default in-memory store, socket.io (which serves its own browser client),
// a raw `ws` endpoint, a server-sent events feed, an upload and a slow page.
// Nothing in it knows about sempre.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import express from 'express';
import session from 'express-session';
import { Server as SocketIoServer } from 'socket.io';
import { WebSocketServer } from 'ws';

const HELP = `real-app — an ordinary Express app (sessions, socket.io, ws, SSE, uploads) for sempre's tests

Usage: node_modules/.bin/node test/apps/real-app.ts --port PORT [--host ADDR] [--name NAME]

Options:
  --port PORT   port to listen on (required)
  --host ADDR   address to bind (default 127.0.0.1)
  --name NAME   instance name the app reports (default ADDR:PORT)
  -h, --help    show this help

Endpoints:
  GET  /             a small HTML page with a login form
  POST /login        user=NAME (form or JSON): logs in (in-memory session, cookie connect.sid)
  GET  /me           {instance, user, views}: views counted in the session
  GET  /chat         socket.io page (state on window.chat, for a browser test)
  /socket.io/        socket.io (polling, then WebSocket); 'echo' is acknowledged with {instance, data}
  /ws                raw WebSocket: sends {instance}, then echoes every message
  GET  /slow?ms=N    answers 200 after N ms
  GET  /events       server-sent events, one a second, naming the instance
  POST /upload       streams the body: {instance, bytes, sha256}
  GET  /healthz      200 while serving

Every request is logged on stdout as "METHOD URL".

Examples:
  node_modules/.bin/node test/apps/real-app.ts --port 3001 --name app1
  curl -c jar -d user=ana http://127.0.0.1:3001/login && curl -b jar http://127.0.0.1:3001/me
`;

declare module 'express-session' {
  interface SessionData {
    user: string;
    views: number;
  }
}

function fail(message: string): never {
  process.stderr.write(`real-app: ${message}\n`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' }, name: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }).values;
} catch (error) {
  fail(`${(error as Error).message.split('\n')[0]} (see --help)`);
}
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const port = Number(args.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`--port must be a whole number from 1 to 65535 (got ${JSON.stringify(args.port ?? null)})`);
const host = args.host ?? '127.0.0.1';
const instance = args.name ?? `${host}:${port}`;

const app = express();
app.disable('x-powered-by');
// One line per request, as morgan or any access log would write it: a test
// compares what the app received with what the balancer forwarded.
app.use((req, _res, next) => {
  process.stdout.write(`${req.method} ${req.originalUrl}\n`);
  next();
});
app.use(session({ secret: 'the-company-secret-since-2014', resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax' } }));

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

app.get('/', (req, res) => {
  const user = req.session.user;
  res.type('html').send(`<!doctype html><meta charset="utf-8"><title>Company page</title>
<h1>Company page</h1><p>Served by ${escape(instance)}.</p>
${user ? `<p>Logged in as ${escape(user)}.</p>` : '<form method="post" action="/login"><input name="user" placeholder="name"> <button>Log in</button></form>'}
<p><a href="/chat">Chat</a></p>`);
});

app.post('/login', express.urlencoded({ extended: false }), express.json(), (req, res) => {
  const user = (req.body as { user?: unknown } | undefined)?.user;
  if (typeof user !== 'string' || !user.trim()) {
    res.status(400).json({ error: 'user is required' });
    return;
  }
  req.session.user = user.trim();
  if (req.is('urlencoded')) res.redirect(303, '/');
  else res.json({ instance, user: req.session.user });
});

app.get('/me', (req, res) => {
  req.session.views = (req.session.views ?? 0) + 1;
  res.json({ instance, user: req.session.user ?? null, views: req.session.views });
});

// The browser client connects with socket.io's defaults (polling, then an
// upgrade to WebSocket) and keeps what a test needs on window.chat.
app.get('/chat', (_req, res) => {
  res.type('html').send(`<!doctype html><meta charset="utf-8"><title>Chat</title>
<h1>Chat</h1><p id="state">connecting…</p><ul id="log"></ul>
<script src="/socket.io/socket.io.js"></script>
<script>
  const chat = window.chat = { connected: false, transport: null, instance: null, connects: 0, messages: [], replies: [], disconnects: [] };
  const socket = window.socket = io();
  const show = () => { document.getElementById('state').textContent = chat.connected ? 'connected to ' + chat.instance + ' over ' + chat.transport : 'reconnecting…'; };
  socket.on('connect', () => {
    chat.connected = true;
    chat.connects += 1;
    chat.transport = socket.io.engine.transport.name;
    socket.io.engine.once('upgrade', (transport) => { chat.transport = transport.name; show(); });
    show();
  });
  socket.on('disconnect', (reason) => { chat.connected = false; chat.instance = null; chat.disconnects.push({ at: Date.now(), reason }); show(); });
  socket.on('hello', (message) => { chat.instance = message.instance; chat.messages.push({ ...message, at: Date.now() }); show(); });
  // Sends one message; resolves with the acknowledgement, or null after 2 s.
  window.echo = (data) => new Promise((resolve) => {
    socket.timeout(2000).emit('echo', data, (error, reply) => {
      if (!error) { chat.replies.push(reply); const li = document.createElement('li'); li.textContent = reply.instance + ': ' + reply.data; document.getElementById('log').append(li); }
      resolve(error ? null : reply);
    });
  });
</script>`);
});

app.get('/slow', (req, res) => {
  const ms = Math.min(Math.max(Number(req.query.ms) || 0, 0), 120_000);
  const timer = setTimeout(() => res.json({ instance, ms }), ms);
  res.on('close', () => clearTimeout(timer));
});

const feeds = new Set<express.Response>();
app.get('/events', (req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  let n = 0;
  const send = () => res.write(`data: ${JSON.stringify({ instance, n: n++, at: Date.now() })}\n\n`);
  send();
  const timer = setInterval(send, 1000);
  feeds.add(res);
  req.on('close', () => {
    clearInterval(timer);
    feeds.delete(res);
  });
});

app.post('/upload', async (req, res, next) => {
  try {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      hash.update(chunk);
    }
    res.json({ instance, bytes, sha256: hash.digest('hex') });
  } catch (error) {
    next(error);
  }
});

app.get('/healthz', (_req, res) => {
  res.type('text').send('ok\n');
});

const server = createServer(app);

// socket.io answers its own upgrades under /socket.io/; the raw WebSocket
// server gets /ws; any other upgrade is refused.
const io = new SocketIoServer(server, { destroyUpgrade: false });
io.on('connection', (socket) => {
  socket.emit('hello', { instance });
  socket.on('echo', (data: unknown, ack?: (reply: unknown) => void) => {
    if (typeof ack === 'function') ack({ instance, data });
  });
});

const wss = new WebSocketServer({ noServer: true });
wss.on('connection', (ws) => {
  ws.send(JSON.stringify({ instance }));
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

server.on('upgrade', (req, socket: Socket, head: Buffer) => {
  const path = new URL(req.url ?? '/', 'http://app').pathname;
  if (path.startsWith('/socket.io/')) return; // socket.io's own listener
  if (path === '/ws') {
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    return;
  }
  socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
});

server.listen(port, host, () => {
  process.stdout.write(`real-app ${instance} listening on http://${host}:${port}/\n`);
});

// Graceful stop: no new connections, WebSockets and feeds closed, requests in
// flight finish (at most 10 s), exit 0.
let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`real-app ${instance}: SIGTERM, stopping\n`);
  for (const ws of wss.clients) ws.close(1001, 'server shutting down');
  for (const feed of feeds) feed.end();
  io.close(() => process.exit(0)); // disconnects socket.io clients and closes the HTTP server
  server.closeIdleConnections();
  setTimeout(() => {
    server.closeAllConnections();
    for (const ws of wss.clients) ws.terminate();
    process.exit(0);
  }, 10_000).unref();
});
