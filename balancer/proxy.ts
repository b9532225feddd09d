// Handles one client request: pick an instance, proxy with http-proxy-3 over
// keep-alive connections, and when the attempt fails in a way the retry
// policy allows, try another instance — only while nothing has been sent to
// the client yet. Failures also feed passive health (ejection).
import { Agent, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createProxyServer } from 'http-proxy-3';
import pRetry, { AbortError } from 'p-retry';
import type { Instance } from '../shared/instance.ts';
import { instanceOrigin } from '../shared/instance.ts';
import type { Logger } from '../shared/logger.ts';
import type { InstanceStates } from './instance-state.ts';
import type { BalancerMetrics } from './metrics.ts';
import type { Picker } from './picker.ts';
import { requestIdSource, setForwardingHeaders } from './forwarding.ts';
import { bodyStream, readRequestBody, type RequestBody } from './request-body.ts';
import { classifyError, countsAgainstInstance, mayRetry, type FailureKind } from './retry-policy.ts';
import type { RoutingTable } from './routing-table.ts';
import type { Sticky } from './sticky.ts';

export interface ProxySettings {
  retries: number;
  retryOnStatus: readonly string[];
  connectTimeout: number;
  responseTimeout: number;
  upstreamIdleTimeout: number;
  maxReplayBody: number;
  accessLog: boolean;
  maxPerInstance: number;
}

export interface ProxyDeps {
  settings: ProxySettings;
  logger: Logger;
  table: () => RoutingTable;
  states: InstanceStates;
  picker: Picker;
  sticky: Sticky;
  metrics: BalancerMetrics;
  /** Why there is no instance, for the 503 body. */
  emptyReason: () => string;
  onEjected: (instance: Instance, kind: FailureKind, message: string) => void;
  /** Every answered client request, for the traffic series. */
  onRequest?: (status: number, durationMs: number, servedBy: string | undefined) => void;
  now?: () => number;
}

/** A failed attempt that another instance may be able to serve. */
export class AttemptFailure extends Error {
  readonly kind: FailureKind;
  readonly instance: Instance;
  constructor(kind: FailureKind, instance: Instance, message: string) {
    super(message);
    this.name = 'AttemptFailure';
    this.kind = kind;
    this.instance = instance;
  }
}

class ClientGone extends Error {}
class NoInstanceLeft extends Error {}

interface Attempt {
  instance: Instance;
  method: string;
  /** Response headers arrived: from here on the attempt cannot be abandoned. */
  responded: boolean;
  startedAt: number;
  connected: boolean;
  reusedSocket: boolean;
  proxyReq: ClientRequest | undefined;
  timer: NodeJS.Timeout | undefined;
  settled: boolean;
  /** Whether a retryable status may be retried from this attempt. */
  statusRetryAllowed: boolean;
  /** Set-Cookie that (re)binds a sticky client to this attempt's instance. */
  setCookie: string | undefined;
  resolve: () => void;
  reject: (error: Error) => void;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded to the client.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate']);

export interface ProxyHandler {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /**
   * The instance is out (Consul dropped it, or it was ejected): its in-flight
   * idempotent requests still waiting for an answer are retried elsewhere now
   * instead of waiting for the response timeout. Returns how many.
   */
  abandon(instanceId: string, reason: string): number;
  /** Start time of the oldest attempt on this instance still waiting for response headers. */
  oldestUnanswered(instanceId: string): number | undefined;
  inFlight(): number;
  close(): void;
}

export function createProxyHandler(deps: ProxyDeps): ProxyHandler {
  const { settings, logger, states, picker, sticky, metrics } = deps;
  const now = deps.now ?? Date.now;
  const retryStatus = new Set(settings.retryOnStatus.map(Number));
  // Keep-alive to instances; idle sockets close before the app's own
  // keep-alive timeout so we rarely reuse a socket the app is closing.
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 512, timeout: settings.upstreamIdleTimeout, scheduling: 'lifo' });
  const proxy = createProxyServer({ xfwd: false, selfHandleResponse: true, connectTimeout: settings.connectTimeout, proxyTimeout: settings.responseTimeout + 1000, agent });
  const attempts = new WeakMap<ServerResponse, Attempt>();
  // Label lookups hash an object each time; at thousands of requests a second
  // that shows, so each label combination's counter is looked up once.
  const attemptCounters = new Map<string, { inc(): void }>();
  const countAttempt = (instance: string, outcome: string) => {
    const key = `${instance}\u0000${outcome}`;
    let counter = attemptCounters.get(key);
    if (!counter) attemptCounters.set(key, (counter = metrics.attempts.labels({ instance, outcome })));
    counter.inc();
  };
  const requestCounters = new Map<number, { inc(): void }>();
  const countRequest = (status: number) => {
    let counter = requestCounters.get(status);
    if (!counter) requestCounters.set(status, (counter = metrics.requests.labels({ code: String(status) })));
    counter.inc();
  };
  const inFlightByInstance = new Map<string, Set<Attempt>>();
  let inFlight = 0;
  const nextRequestId = requestIdSource();

  const settle = (attempt: Attempt, outcome: 'ok' | AttemptFailure | ClientGone) => {
    if (attempt.settled) return;
    attempt.settled = true;
    clearTimeout(attempt.timer);
    const id = attempt.instance.id;
    inFlightByInstance.get(id)?.delete(attempt);
    if (outcome === 'ok') {
      states.succeeded(id);
      countAttempt(id, 'ok');
      attempt.resolve();
    } else if (outcome instanceof AttemptFailure) {
      const counts = countsAgainstInstance(outcome.kind, attempt.reusedSocket);
      if (states.failed(id, outcome.kind, outcome.message, counts, now())) {
        metrics.ejections.inc({ instance: id, cause: outcome.kind });
        deps.onEjected(attempt.instance, outcome.kind, outcome.message);
        abandon(id, `ejected after ${outcome.kind}`);
      }
      countAttempt(id, outcome.kind);
      attempt.reject(outcome);
    } else {
      states.abandoned(id);
      attempt.reject(outcome);
    }
  };

  proxy.on('proxyReq', (proxyReq: ClientRequest, _req: IncomingMessage, res: ServerResponse, _options: unknown, socket: Socket) => {
    const attempt = attempts.get(res);
    if (!attempt || attempt.settled) return;
    attempt.proxyReq = proxyReq;
    attempt.reusedSocket = proxyReq.reusedSocket;
    if (!socket.connecting) attempt.connected = true;
    else socket.once('connect', () => { attempt.connected = true; });
  });

  proxy.on('proxyRes', (proxyRes: IncomingMessage, _req: IncomingMessage, res: ServerResponse) => {
    const attempt = attempts.get(res);
    if (!attempt || attempt.settled) {
      proxyRes.resume();
      return;
    }
    clearTimeout(attempt.timer);
    attempt.responded = true;
    states.answered(attempt.instance.id, now());
    const status = proxyRes.statusCode ?? 502;
    if (retryStatus.has(status) && attempt.statusRetryAllowed) {
      proxyRes.resume(); // discard the body; the socket goes back to the pool
      settle(attempt, new AttemptFailure('status', attempt.instance, `answered HTTP ${status}`));
      return;
    }
    const headers: string[] = [];
    const raw = proxyRes.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
    }
    headers.push('x-served-by', attempt.instance.id);
    if (attempt.setCookie) headers.push('set-cookie', attempt.setCookie);
    res.writeHead(status, proxyRes.statusMessage, headers);
    proxyRes.on('error', () => res.destroy());
    proxyRes.on('aborted', () => res.destroy());
    proxyRes.pipe(res);
    res.once('finish', () => settle(attempt, 'ok'));
  });

  const attemptOn = (req: IncomingMessage, res: ServerResponse, instance: Instance, body: RequestBody, statusRetryAllowed: boolean, setCookie: string | undefined) =>
    new Promise<void>((resolve, reject) => {
      const attempt: Attempt = { instance, method: req.method ?? 'GET', responded: false, startedAt: now(), connected: false, reusedSocket: false, proxyReq: undefined, timer: undefined, settled: false, statusRetryAllowed, setCookie, resolve, reject };
      attempts.set(res, attempt);
      let running = inFlightByInstance.get(instance.id);
      if (!running) inFlightByInstance.set(instance.id, (running = new Set()));
      running.add(attempt);
      states.begin(instance.id);
      attempt.timer = setTimeout(() => {
        const error = Object.assign(new Error(`no response within ${settings.responseTimeout} ms`), { code: 'ERESPONSETIMEOUT' });
        if (attempt.proxyReq) attempt.proxyReq.destroy(error);
        else settle(attempt, new AttemptFailure('timeout', instance, error.message));
      }, settings.responseTimeout);
      // Without a body, http-proxy pipes the (ended) request itself, which
      // ends the upstream request at once, on a retry too.
      const buffer = bodyStream(body);
      proxy.web(req, res, buffer ? { target: instanceOrigin(instance), buffer } : { target: instanceOrigin(instance) }, (error: Error & { code?: string }) => {
        if (res.destroyed || res.writableEnded || (req.destroyed && !req.complete)) return settle(attempt, new ClientGone());
        if (res.headersSent) {
          // The response broke mid-body: nothing can be retried, the client sees a cut response.
          settle(attempt, new AttemptFailure('reset', instance, error.message));
          res.destroy();
          return;
        }
        const kind = classifyError(error, attempt.connected);
        const detail = !error.code || error.message.includes(error.code) || kind === 'timeout' ? error.message : `${error.code}: ${error.message}`;
        settle(attempt, new AttemptFailure(kind, instance, detail));
      });
    });

  function abandon(instanceId: string, reason: string): number {
    let count = 0;
    for (const attempt of inFlightByInstance.get(instanceId) ?? []) {
      if (attempt.settled || attempt.responded || !mayRetry(attempt.method, 'timeout')) continue;
      count += 1;
      const error = Object.assign(new Error(`abandoned unanswered: ${reason}`), { code: 'EINSTANCEGONE' });
      if (attempt.proxyReq) attempt.proxyReq.destroy(error);
      else settle(attempt, new AttemptFailure('timeout', attempt.instance, error.message));
    }
    if (count > 0) logger.warn({ instance: instanceId, requests: count, reason }, 'retrying unanswered requests of an instance that left rotation');
    return count;
  }

  const sendError = (res: ServerResponse, status: 502 | 503, message: string) => {
    if (res.headersSent || res.destroyed) return;
    const body = `${status === 503 ? '503 Service Unavailable' : '502 Bad Gateway'}: ${message}\n`;
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'retry-after': '1', 'cache-control': 'no-store' });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const reqId = nextRequestId(req);
    const method = req.method ?? 'GET';
    const tried = new Set<string>();
    const failures: string[] = [];
    let servedBy: string | undefined;
    inFlight += 1;

    res.once('close', () => {
      inFlight -= 1;
      const attempt = attempts.get(res);
      if (attempt && !attempt.settled) settle(attempt, new ClientGone());
      // Read here, not from the retry loop: 'close' can come before its continuation runs.
      servedBy = attempt?.responded ? attempt.instance.id : undefined;
      const durationMs = Math.round((performance.now() - started) * 10) / 10;
      const status = res.writableFinished ? res.statusCode : 499;
      countRequest(status);
      metrics.duration.observe(durationMs / 1000);
      deps.onRequest?.(status, durationMs, servedBy);
      if (settings.accessLog) {
        logger.info({ reqId, method, url: req.url, status, durationMs, instance: servedBy, attempts: tried.size, ...(failures.length ? { failures } : {}) }, 'request');
      }
    });

    setForwardingHeaders(req, reqId);

    if (deps.table().instances.length === 0) {
      metrics.noInstance.inc();
      req.resume();
      return sendError(res, 503, deps.emptyReason());
    }

    let body: RequestBody;
    try {
      body = await readRequestBody(req, settings.maxReplayBody);
    } catch {
      return; // the client went away while sending its body
    }
    const retries = body.replayable ? settings.retries : 0;
    // Sticky: the instance the client's cookie names is tried first; any
    // other instance that serves it sends a cookie naming itself.
    const stickyTable = deps.table();
    const stickyOn = sticky.enabled(stickyTable);
    const bound = stickyOn ? sticky.boundInstance(stickyTable, req.headers.cookie) : undefined;

    try {
      await pRetry(
        async (attemptNumber) => {
          if (res.destroyed) throw new AbortError(new ClientGone());
          const instance = picker.pick(deps.table(), tried, now(), bound);
          if (!instance) throw new AbortError(new NoInstanceLeft());
          tried.add(instance.id);
          // A 502/503/504 is passed through when no other instance could take over.
          const statusRetryAllowed = attemptNumber <= retries && mayRetry(method, 'status') && picker.hasAlternative(deps.table(), tried);
          await attemptOn(req, res, instance, body, statusRetryAllowed, stickyOn && instance.id !== bound ? sticky.setCookie(instance.id) : undefined);
        },
        {
          retries,
          minTimeout: 0,
          maxTimeout: 0,
          randomize: false,
          shouldRetry: ({ error }) => error instanceof AttemptFailure && mayRetry(method, error.kind) && !res.headersSent && !res.destroyed,
          onFailedAttempt: ({ error, retriesLeft }) => {
            if (!(error instanceof AttemptFailure)) return;
            failures.push(`${error.instance.id} ${error.kind}: ${error.message}`);
            if (retriesLeft > 0 && mayRetry(method, error.kind)) metrics.retries.inc({ reason: error.kind });
          },
        },
      );
    } catch (error) {
      if (error instanceof ClientGone || res.destroyed) return;
      if (error instanceof NoInstanceLeft && tried.size === 0 && settings.maxPerInstance > 0 && deps.table().instances.length > 0) {
        // Every instance is at its in-flight cap: answer now rather than queue behind a slow one.
        metrics.saturated.inc();
        return sendError(res, 503, `every instance already has ${settings.maxPerInstance} requests in flight; try again shortly`);
      }
      if (error instanceof NoInstanceLeft && tried.size === 0) {
        metrics.noInstance.inc();
        return sendError(res, 503, deps.emptyReason());
      }
      if (error instanceof AttemptFailure && !mayRetry(method, error.kind)) {
        return sendError(res, 502, `${error.instance.id} failed (${error.kind}: ${error.message}); a ${method} that may have reached the app is not retried`);
      }
      return sendError(res, 502, `no instance could answer after ${tried.size} attempt(s): ${failures.join('; ') || String(error)}`);
    }
  };

  return {
    handle: (req, res) => {
      handle(req, res).catch((error: unknown) => {
        logger.error({ err: error }, 'unexpected error while proxying');
        sendError(res, 502, 'internal balancer error');
      });
    },
    abandon,
    oldestUnanswered: (instanceId) => {
      let oldest: number | undefined;
      for (const attempt of inFlightByInstance.get(instanceId) ?? []) {
        if (!attempt.settled && !attempt.responded && (oldest === undefined || attempt.startedAt < oldest)) oldest = attempt.startedAt;
      }
      return oldest;
    },
    inFlight: () => inFlight,
    close: () => {
      proxy.close();
      agent.destroy();
    },
  };
}
