// The public listener: plain HTTP, HTTPS (TLS 1.2+), or HTTPS with HTTP/2
// offered beside HTTP/1.1, with the client guard in front of the handlers.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createSecureServer as createHttp2Server, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../shared/logger.ts';
import { guardServer, type ClientLimits, type GuardMetrics } from './client-guard.ts';

export interface PublicServerOptions extends ClientLimits {
  tlsCert: string;
  tlsKey: string;
  http2: boolean;
  clientIdleTimeout: number;
  headersTimeout: number;
  requestTimeout: number;
  maxHeaderSize: number;
}

export function createPublicServer(
  options: PublicServerOptions,
  deps: { logger: Logger; metrics: GuardMetrics },
  handlers: { request: (req: IncomingMessage, res: ServerResponse) => void; upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void },
): Server {
  const serverOptions: ServerOptions = {
    keepAliveTimeout: options.clientIdleTimeout,
    headersTimeout: options.headersTimeout,
    requestTimeout: options.requestTimeout,
    maxHeaderSize: options.maxHeaderSize,
    // Node checks the two timeouts above every 30 s by default: a slowloris would get that long.
    connectionsCheckingInterval: 1000,
  };
  const tls = options.tlsCert ? loadCertificate(options.tlsCert, options.tlsKey) : undefined;
  // HTTP/2 (with HTTP/1.1 on the same port): Node's compatibility API gives
  // the handler request and response objects shaped like HTTP/1's. The cast is that seam.
  const server: Server = tls && options.http2
    ? createHttp2Server({ ...tls, allowHTTP1: true, settings: { maxHeaderListSize: options.maxHeaderSize } }) as unknown as Server
    : tls ? createTlsServer({ ...serverOptions, ...tls }) : createServer(serverOptions);
  if (tls && options.http2) {
    // Idle connections (HTTP/2 sessions and HTTP/1.1 alike) close after this;
    // the HTTP/1.1 head timeout is the guard's (see client-guard.ts).
    server.setTimeout(options.clientIdleTimeout);
    giveConnectionClosers(server);
  }
  const limits = { ...options, ...(tls && options.http2 ? { http1HeadersTimeoutMs: options.headersTimeout } : {}) };
  server.on('request', guardServer(server, limits, { logger: deps.logger, metrics: deps.metrics }, handlers.request, handlers.upgrade));
  return server;
}

/**
 * The HTTP/2 server lacks http.Server's closeIdleConnections() and
 * closeAllConnections(), which the shutdown calls (without them a stopping
 * worker threw, kept its sessions open and never exited). Idle: each HTTP/2
 * session is told GOAWAY (its streams in flight finish). All: every session
 * and connection, HTTP/1.1 ones included, is destroyed.
 */
function giveConnectionClosers(server: Server): void {
  const sessions = new Set<ServerHttp2Session>();
  const sockets = new Set<Socket>();
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.closeIdleConnections = () => {
    for (const session of sessions) session.close();
  };
  server.closeAllConnections = () => {
    for (const session of sessions) session.destroy();
    for (const socket of sockets) socket.destroy();
  };
}

/** The certificate and key, checked now: a broken pair is a clear error at start or reload, not at the first handshake. */
function loadCertificate(certFile: string, keyFile: string): { cert: Buffer; key: Buffer; minVersion: 'TLSv1.2' } {
  const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' as const };
  try {
    createSecureContext(tls);
  } catch (error) {
    throw new Error(`balancer.tlsCert: ${certFile} with ${keyFile} is not a usable certificate and key: ${(error as Error).message}`);
  }
  return tls;
}

/** Listens on host:port, or on an inherited socket's descriptor (lifecycle/held-sockets.ts). */
export async function listen(server: Server, on: { port: number; host: string } | { fd: number }, what: string): Promise<void> {
  server.listen('fd' in on ? { fd: on.fd } : { port: on.port, host: on.host });
  const [error] = await Promise.race([once(server, 'listening').then(() => [undefined]), once(server, 'error')]);
  const where = 'fd' in on ? `inherited socket (fd ${on.fd})` : `${on.host}:${on.port}`;
  if (error) throw new Error(`cannot listen on ${where} for the ${what}: ${(error as Error).message}`);
}
