// What stands between the internet and the proxy: limits on connections (in
// all and per client address), a request rate per client address answered
// with 429, a body size answered with 413, and clear answers for requests
// Node's parser refuses (400, 408 for a slow client, 431 for huge headers),
// and the request rules of request-rules.ts (a second Host, CONNECT, TRACE,
// the asterisk form). Header and request timeouts themselves are Node's (set on the server by
// balancer.ts), except on an HTTP/2 server's HTTP/1.1 side, where this module
// times each request head itself.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { rawAnswer } from '../proxy/raw-answer.ts';
import { checkRequest, CONNECT_REFUSAL, refusalBody, type Refusal, type RequestRules } from './request-rules.ts';
import type { Logger } from '../../shared/logger.ts';

export interface ClientLimits extends RequestRules {
  maxConnections: number;
  maxConnectionsPerClient: number;
  /** Requests per second per client address; 0 = no limit. */
  rateLimit: number;
  rateBurst: number;
  /** Largest accepted Content-Length; 0 = no limit. */
  maxBody: number;
  /**
   * Set on an HTTP/2 server only: its HTTP/1.1 side does not apply Node's
   * headersTimeout (measured: a slowloris stayed open), so the guard does.
   */
  http1HeadersTimeoutMs?: number;
}

const HEAD_TIMER = Symbol('sempre head timer');
type TimedSocket = Socket & { [HEAD_TIMER]?: NodeJS.Timeout };

/** A token bucket per client address; idle buckets are forgotten. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly rate: number;
  private readonly burst: number;

  constructor(rate: number, burst: number) {
    this.rate = rate;
    this.burst = Math.max(1, burst);
  }

  /** 0 when allowed, else the seconds until a request would be. */
  take(client: string, now: number): number {
    if (this.rate <= 0) return 0;
    const bucket = this.buckets.get(client) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.rate);
    bucket.at = now;
    this.buckets.set(client, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.rate));
  }

  /** Drops buckets that are full again: they carry no information. */
  sweep(now: number): void {
    for (const [client, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.rate >= this.burst) this.buckets.delete(client);
    }
  }
}

export interface GuardMetrics {
  refused: { inc(labels: { reason: string }): void };
}

function plain(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(body);
}

/** A refusal written straight to a socket (CONNECT, an upgrade request). */
function answerRaw(socket: Duplex, refusal: Refusal): void {
  rawAnswer(socket, refusal.status, refusal.title, refusal.detail, refusal.headers);
}

/**
 * Installs the limits on `server` and returns the request handler to use in
 * place of `next`. Upgrade requests (WebSocket) pass the same rate limit on
 * their way to `nextUpgrade`.
 */
export function guardServer(server: Server, limits: ClientLimits, deps: { logger: Logger; metrics: GuardMetrics; now?: () => number }, next: (req: IncomingMessage, res: ServerResponse) => void, nextUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): (req: IncomingMessage, res: ServerResponse) => void {
  const now = deps.now ?? Date.now;
  const { logger, metrics } = deps;
  server.maxConnections = limits.maxConnections;
  const perClient = new Map<string, number>();
  const limiter = new RateLimiter(limits.rateLimit, limits.rateBurst);
  const sweeper = setInterval(() => limiter.sweep(now()), 10_000);
  sweeper.unref();
  server.once('close', () => clearInterval(sweeper));
  // Log a refusal once a second per reason at most: a flood must not flood the log too.
  const lastLog = new Map<string, number>();
  const refused = (reason: string, detail: Record<string, unknown>) => {
    metrics.refused.inc({ reason });
    const t = now();
    if ((lastLog.get(reason) ?? 0) + 1000 > t) return;
    lastLog.set(reason, t);
    logger.warn({ reason, ...detail }, 'client refused');
  };

  server.on('connection', (socket: Socket) => {
    const client = socket.remoteAddress ?? '';
    const count = (perClient.get(client) ?? 0) + 1;
    if (limits.maxConnectionsPerClient > 0 && count > limits.maxConnectionsPerClient) {
      refused('connections-per-client', { client, limit: limits.maxConnectionsPerClient });
      socket.destroy();
      return;
    }
    perClient.set(client, count);
    socket.once('close', () => {
      const left = (perClient.get(client) ?? 1) - 1;
      if (left <= 0) perClient.delete(client);
      else perClient.set(client, left);
    });
  });
  server.on('drop', () => refused('max-connections', { limit: limits.maxConnections }));

  // The head of each HTTP/1.1 request must arrive within the timeout: armed
  // when the connection opens and after each response, cleared when a
  // request's head is complete (the 'request' event).
  const headTimeout = limits.http1HeadersTimeoutMs;
  const armHeadTimer = (socket: TimedSocket) => {
    if (!headTimeout) return;
    clearTimeout(socket[HEAD_TIMER]);
    socket[HEAD_TIMER] = setTimeout(() => {
      refused('slow-client', { client: socket.remoteAddress, code: 'HEADERS_TIMEOUT' });
      rawAnswer(socket, 408, 'Request Timeout');
      setTimeout(() => socket.destroy(), 1000).unref();
    }, headTimeout);
  };
  if (headTimeout) {
    server.on('secureConnection', (socket: TimedSocket & { alpnProtocol?: string | false }) => {
      if (socket.alpnProtocol === 'h2') return;
      armHeadTimer(socket);
      socket.once('close', () => clearTimeout(socket[HEAD_TIMER]));
    });
  }

  // Node's parser refused the request: answer it properly, other clients are
  // untouched. A head it accepted may still be followed by a body it refuses
  // (a Transfer-Encoding it cannot decode, a chunk size that overflows): the
  // request is then already in the proxy's hands, so the answer goes through
  // its response, which tells the proxy the client is answered (never the
  // instance's failure), unless the instance's answer has already begun.
  server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
    const inProgress = (socket as Socket & { _httpMessage?: (ServerResponse & { req?: IncomingMessage }) | null })._httpMessage;
    // With pipelining the response in progress may be an earlier, complete
    // request's: the broken body is a later one's, so only close then.
    if (!socket.writable || inProgress?.headersSent || (inProgress?.req && inProgress.req.complete)) {
      socket.destroy();
      return;
    }
    const [status, text] = error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout']
        : [400, 'Bad Request'];
    refused(status === 408 ? 'slow-client' : status === 431 ? 'headers-too-large' : 'malformed', { client: socket.remoteAddress, code: error.code });
    if (!inProgress) return rawAnswer(socket, status, text, error.code ?? '');
    plain(inProgress, status, `${status} ${text}: ${error.code ?? error.message}\n`, { connection: 'close' });
    // The parser is gone: nothing more can be read on this connection.
    inProgress.once('finish', () => socket.destroySoon());
  });

  // CONNECT gets its own event; with no listener Node would close the socket without a word.
  // On an HTTP/2 server the event carries a response object instead of a socket.
  server.on('connect', (req: IncomingMessage, socketOrResponse: Duplex | ServerResponse) => {
    refused(CONNECT_REFUSAL.reason!, { client: req.socket.remoteAddress, method: 'CONNECT' });
    if ('writeHead' in socketOrResponse) return plain(socketOrResponse, CONNECT_REFUSAL.status, refusalBody(CONNECT_REFUSAL), CONNECT_REFUSAL.headers);
    socketOrResponse.on('error', () => undefined);
    answerRaw(socketOrResponse, CONNECT_REFUSAL);
  });

  if (nextUpgrade) {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => undefined); // a client reset must not crash the balancer
      const client = req.socket.remoteAddress ?? '';
      const wait = limiter.take(client, now());
      if (wait > 0) {
        refused('rate-limit', { client, limit: limits.rateLimit });
        rawAnswer(socket, 429, 'Too Many Requests', `more than ${limits.rateLimit} requests a second from ${client}`, { 'Retry-After': String(wait) });
        return;
      }
      const refusal = checkRequest(req, limits);
      if (refusal) {
        if (refusal.reason) refused(refusal.reason, { client, method: req.method });
        answerRaw(socket, refusal);
        return;
      }
      nextUpgrade(req, socket, head);
    });
  }

  return (req, res) => {
    if (headTimeout && req.httpVersionMajor < 2) {
      const socket = req.socket as TimedSocket;
      clearTimeout(socket[HEAD_TIMER]);
      res.once('finish', () => { if (!socket.destroyed) armHeadTimer(socket); });
    }
    const client = req.socket.remoteAddress ?? '';
    const wait = limiter.take(client, now());
    if (wait > 0) {
      refused('rate-limit', { client, limit: limits.rateLimit });
      req.resume();
      plain(res, 429, `429 Too Many Requests: more than ${limits.rateLimit} requests a second from ${client}\n`, { 'retry-after': String(wait) });
      return;
    }
    const refusal = checkRequest(req, limits);
    if (refusal) {
      if (refusal.reason) refused(refusal.reason, { client, method: req.method, url: req.url?.slice(0, 200) });
      req.resume();
      // A refused request's body is not read to the end on purpose: the connection closes after the answer.
      plain(res, refusal.status, refusalBody(refusal), refusal.reason && req.httpVersionMajor < 2 ? { ...refusal.headers, connection: 'close' } : refusal.headers);
      return;
    }
    // From the raw headers: Node builds req.headers only when asked, and the proxy never asks.
    let declared = Number.NaN;
    for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.length === 14 && req.rawHeaders[i]!.toLowerCase() === 'content-length') declared = Number(req.rawHeaders[i + 1]);
    if (limits.maxBody > 0 && Number.isFinite(declared) && declared > limits.maxBody) {
      refused('body-too-large', { client, declared, limit: limits.maxBody });
      // Nothing of the body is read: close rather than drain it (HTTP/1; an
      // HTTP/2 stream just ends, the connection carries others).
      const http1 = req.httpVersionMajor < 2;
      plain(res, 413, `413 Content Too Large: at most ${limits.maxBody} bytes\n`, http1 ? { connection: 'close' } : {});
      if (http1) req.socket.end();
      return;
    }
    next(req, res);
  };
}
