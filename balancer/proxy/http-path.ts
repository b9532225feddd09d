// The HTTP request path: pick an instance, send the request on a keep-alive
// connection from undici's Pool for that instance, and write the answer
// straight into the client's response from a handler object (raw header
// arrays in and out, backpressure honoured), as undici's own proxy example
// does. When an attempt fails in a way the retry policy allows, another
// instance is tried — only while nothing has been sent to the client. The
// first attempt is made directly; p-retry takes over only when a retry is due.
// Failures also feed passive health (ejection).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createRequire } from 'node:module';
import pRetry, { AbortError } from 'p-retry';
import type { Dispatcher, Pool as PoolType } from 'undici';
import type { Instance } from '../../shared/instance.ts';
import { instanceOrigin } from '../../shared/instance.ts';
import type { Logger } from '../../shared/logger.ts';
import { createAccessLog, type AccessLog } from '../observe/access-log.ts';
import { connectionTokens, HOP_BY_HOP, requestIdSource, upstreamRequestHeaders, type RequestFacts, type RequestIdSource } from './forwarding.ts';
import type { InstanceStates } from '../health/instance-state.ts';
import type { Picker } from './picker.ts';
import { readRequestBody, type RequestBody } from './request-body.ts';
import { countsAgainstInstance, mayRetry, type FailureKind } from './retry-policy.ts';
import { whoseFault } from './whose-fault.ts';
import type { RouteTarget } from '../discovery/route-table.ts';
import type { RoutingTable } from '../discovery/routing-table.ts';
import { stripPrefix } from '../../shared/routes.ts';
import { hostLookup } from '../discovery/host-lookup.ts';
import type { Sticky } from './sticky.ts';
import type { ProxyCounters } from './proxy-counters.ts';
import { InFlightList, type InFlightEntry } from './in-flight.ts';

// Only undici's Pool, not its index: the index also loads fetch, WebSocket,
// the cache and the mocks, 12-15 MB of RSS the balancer never uses (undici
// has no "exports" map, so this path is public in practice).
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType;
type Pool = PoolType;

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
  counters: ProxyCounters;
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
/** The request itself is at fault (whose-fault.ts): the client gets `status`, nothing counts against the instance. */
class RequestAtFault extends Error {
  readonly status: 400 | 501;
  constructor(status: 400 | 501, message: string) {
    super(message);
    this.status = status;
  }
}

export interface ProxyHandler {
  /** `target`: the route that matched (with --routing routes): only its instances, its prefix stripped if asked. */
  handle(req: IncomingMessage, res: ServerResponse, target?: RouteTarget): void;
  /**
   * The instance is out (Consul dropped it, or it was ejected): its in-flight
   * idempotent requests still waiting for an answer are retried elsewhere now
   * instead of waiting for the response timeout. Returns how many.
   */
  abandon(instanceId: string, reason: string): number;
  /** Consul no longer lists the instance: close its idle connections (running responses finish). */
  forget(instanceId: string): void;
  /** Start time of the oldest attempt on this instance still waiting for response headers. */
  oldestUnanswered(instanceId: string): number | undefined;
  inFlight(): number;
  close(): Promise<void>;
}

const HOP_BY_HOP_LENGTHS: ReadonlySet<number> = new Set([...HOP_BY_HOP].map((name) => name.length));

/** The instance's response headers for the client: hop-by-hop dropped, x-served-by (and a sticky cookie) added. */
function clientResponseHeaders(raw: Buffer[], servedBy: string, setCookie: string | undefined): string[] {
  const out: string[] = [];
  let nominated: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    // Only a name as long as a hop-by-hop one can be one: most are not lower-cased at all.
    if (HOP_BY_HOP_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase();
      if (lower === 'connection') nominated = connectionTokens(raw[i + 1]!.toString('latin1'));
      if (HOP_BY_HOP.has(lower)) continue;
    }
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  if (nominated) {
    for (let i = out.length - 2; i >= 0; i -= 2) if (nominated.has(out[i]!.toLowerCase())) out.splice(i, 2);
  }
  out.push('x-served-by', servedBy);
  if (setCookie) out.push('set-cookie', setCookie);
  return out;
}

/**
 * What every exchange and attempt of one proxy handler shares: its
 * dependencies, pools and in-flight bookkeeping. One per handler; each
 * exchange holds it in a field, so the request path makes no closures.
 */
class ProxyContext {
  readonly settings: ProxySettings;
  readonly logger: Logger;
  readonly accessLog: AccessLog;
  readonly states: InstanceStates;
  readonly picker: Picker;
  readonly sticky: Sticky;
  readonly counters: ProxyCounters;
  readonly deps: ProxyDeps;
  readonly now: () => number;
  readonly retryStatus: ReadonlySet<number>;
  readonly nextRequestId: RequestIdSource;
  readonly inFlightByInstance = new Map<string, InFlightList<Attempt>>();
  readonly pools = new Map<string, { instance: Instance; origin: string; pool: Pool }>();
  /** Client requests not yet closed. */
  inFlight = 0;

  constructor(deps: ProxyDeps) {
    this.deps = deps;
    this.settings = deps.settings;
    this.logger = deps.logger;
    this.accessLog = createAccessLog(deps.logger);
    this.states = deps.states;
    this.picker = deps.picker;
    this.sticky = deps.sticky;
    this.counters = deps.counters;
    this.now = deps.now ?? Date.now;
    this.retryStatus = new Set(deps.settings.retryOnStatus.map(Number));
    this.nextRequestId = requestIdSource();
  }

  poolFor(instance: Instance): Pool {
    const known = this.pools.get(instance.id);
    // The same Instance object (the usual case): no origin string to build.
    if (known?.instance === instance) return known.pool;
    const origin = instanceOrigin(instance);
    if (known && known.origin === origin) {
      known.instance = instance;
      return known.pool;
    }
    if (known) void known.pool.close();
    // Idle connections close before the app's own keep-alive timeout (Node's
    // is 5 s), so a socket the app is closing is rarely reused.
    const pool = new Pool(origin, {
      // Host names (compose's app1) through the shared lookup: a dead container's name cannot tie up the thread pool.
      connect: { timeout: this.settings.connectTimeout, lookup: hostLookup },
      keepAliveTimeout: this.settings.upstreamIdleTimeout,
      keepAliveMaxTimeout: this.settings.upstreamIdleTimeout,
      // --response-timeout is the sweep below, not undici's headersTimeout:
      // undici keeps each request's timer until its next 500 ms tick, so
      // thousands of them outlive two young-generation collections and are
      // promoted, and V8 then runs a full collection about every second at
      // full rate (BENCHMARKS.md, "Where the remaining time goes").
      headersTimeout: 0,
      // A stream (SSE, a long download) runs as long as the client stays.
      bodyTimeout: 0,
    });
    this.pools.set(instance.id, { instance, origin, pool });
    return pool;
  }

  /** Consul no longer lists the instance: close its idle connections (running responses finish). */
  forget(instanceId: string): void {
    const known = this.pools.get(instanceId);
    if (!known) return;
    this.pools.delete(instanceId);
    void known.pool.close();
  }

  abandon(instanceId: string, reason: string): number {
    let count = 0;
    for (const attempt of this.inFlightByInstance.get(instanceId)?.entries() ?? []) {
      if (attempt.settled || attempt.responded || !mayRetry(attempt.exchange.method, 'timeout')) continue;
      count += 1;
      attempt.abandon('EINSTANCEGONE', `abandoned unanswered: ${reason}`);
    }
    if (count > 0) this.logger.warn({ instance: instanceId, requests: count, reason }, 'retrying unanswered requests of an instance that left rotation');
    return count;
  }

  // --response-timeout: one sweep over the attempts still waiting for
  // response headers, counted from when the request was fully sent (from
  // dispatch while it is queued or connecting). An upload still streaming to
  // the instance is not timed out: the client's --request-timeout bounds it.
  // Monotonic time, so a clock step cannot time out every request at once.
  sweepResponseTimeouts(): void {
    const { responseTimeout } = this.settings;
    const deadline = performance.now() - responseTimeout;
    for (const running of this.inFlightByInstance.values()) {
      for (const attempt of running.entries()) {
        if (attempt.settled || attempt.responded || (attempt.connected && !attempt.sent) || attempt.waitingSince > deadline) continue;
        attempt.abandon('ERESPONSETIMEOUT', `no response within ${responseTimeout} ms`);
      }
    }
  }

  // The list is in dispatch order: the first unanswered attempt is the oldest.
  // An upload the client is still streaming is waiting on the client, not the instance
  // (unless undici paused the client's body: the instance stopped reading it).
  oldestUnanswered(instanceId: string): number | undefined {
    return this.inFlightByInstance.get(instanceId)?.first((attempt) => !attempt.settled && !attempt.responded && !(attempt.connected && !attempt.sent && attempt.exchange.req.readableFlowing !== false))?.unansweredSince;
  }

  handle(req: IncomingMessage, res: ServerResponse, target: RouteTarget | undefined): void {
    this.inFlight += 1;
    const exchange = new Exchange(this, req, res, target);
    // One listener function for every response, which finds its exchange on
    // the response: no closure per request ('close' comes once, so on() and
    // not once(), which would wrap it).
    (res as ExchangeResponse)[EXCHANGE] = exchange;
    res.on('close', onResponseClose);
    if (exchange.table().instances.length === 0) {
      this.counters.noInstance += 1;
      req.resume();
      return sendError(res, 503, this.deps.emptyReason());
    }
    if (!exchange.facts.hasBody) return exchange.start(NO_BODY);
    readRequestBody(req, this.settings.maxReplayBody).then((body) => exchange.start(body), () => undefined /* the client went away while sending its body */);
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map(({ pool }) => pool.destroy()));
    this.pools.clear();
  }
}

/** One attempt on one instance; undici calls it back as the exchange goes. */
class Attempt implements InFlightEntry<Attempt> {
  prevInFlight: Attempt | undefined = undefined;
  nextInFlight: Attempt | undefined = undefined;
  inFlightList: unknown = undefined;
  readonly exchange: Exchange;
  readonly instance: Instance;
  /** now() since when the instance owes an answer: dispatch, then when the request was fully sent (the stall detector's clock). */
  unansweredSince: number;
  /** performance.now() since when the attempt waits for its answer: dispatch, then when its request was fully sent. */
  waitingSince = performance.now();
  /** The whole request, body included, has been written to the instance. */
  sent = false;
  readonly statusRetryAllowed: boolean;
  readonly setCookie: string | undefined;
  settled = false;
  connected = false;
  responded = false;
  /** A retryable status: its body is discarded, then the attempt fails. */
  discarding = false;
  abortUpstream: ((error?: Error) => void) | undefined;
  resumeUpstream: (() => void) | undefined;
  onDrain: (() => void) | undefined;
  failure: AttemptFailure | undefined;

  constructor(exchange: Exchange, instance: Instance, statusRetryAllowed: boolean, setCookie: string | undefined) {
    this.exchange = exchange;
    this.instance = instance;
    this.unansweredSince = exchange.ctx.now();
    this.statusRetryAllowed = statusRetryAllowed;
    this.setCookie = setCookie;
  }

  onConnect(abort: (error?: Error) => void): void {
    if (this.settled) {
      abort();
      return;
    }
    this.abortUpstream = abort;
    this.connected = true;
  }

  onRequestSent(): void {
    this.sent = true;
    this.waitingSince = performance.now();
    this.unansweredSince = this.exchange.ctx.now();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.settled) return false;
    // The front door already answered the client (its body broke: client-guard.ts).
    if (this.exchange.res.headersSent) {
      this.exchange.settle(this, new ClientGone());
      return false;
    }
    if (statusCode < 200) return true; // 100 Continue, 103 Early Hints: the final answer follows
    this.responded = true;
    const { ctx } = this.exchange;
    ctx.states.answered(this.instance.id, ctx.now());
    if (this.statusRetryAllowed && ctx.retryStatus.has(statusCode)) {
      this.discarding = true;
      this.failure = new AttemptFailure('status', this.instance, `answered HTTP ${statusCode}`);
      return true;
    }
    this.resumeUpstream = resume;
    this.exchange.res.writeHead(statusCode, statusText, clientResponseHeaders(rawHeaders, this.instance.id, this.setCookie));
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.discarding || this.settled) return true;
    const { res } = this.exchange;
    if (res.write(chunk)) return true;
    // The client reads slower than the instance sends: pause until it drains.
    this.onDrain ??= () => this.resumeUpstream?.();
    this.exchange.res.once('drain', this.onDrain);
    return false;
  }

  onComplete(): void {
    if (this.settled) return;
    if (this.discarding) return this.exchange.settle(this, this.failure!);
    this.exchange.res.end();
    this.exchange.settle(this, undefined);
  }

  onError(error: Error & { code?: string }): void {
    if (this.settled) return;
    const { res } = this.exchange;
    if (res.destroyed || res.writableEnded) return this.exchange.settle(this, new ClientGone());
    if (res.headersSent) {
      // The response broke mid-body: nothing can be retried, the client sees a cut response.
      this.exchange.settle(this, new AttemptFailure('reset', this.instance, error.message));
      res.destroy();
      return;
    }
    const { req } = this.exchange;
    const fault = whoseFault(error, { connected: this.connected, requestBroken: req.errored !== null || (req.destroyed && !req.complete) });
    if (fault.who === 'request') return this.exchange.settle(this, new RequestAtFault(fault.status, fault.message));
    const kind = fault.kind;
    const detail = !error.code || error.message.includes(error.code) || kind === 'timeout' ? error.message : `${error.code}: ${error.message}`;
    this.exchange.settle(this, this.failure ?? new AttemptFailure(kind, this.instance, detail));
  }

  /** Given up on (no answer in time, or its instance left rotation): settled now as a timeout, the upstream request aborted. */
  abandon(code: 'ERESPONSETIMEOUT' | 'EINSTANCEGONE', message: string): void {
    if (this.abortUpstream) this.abortUpstream(Object.assign(new Error(message), { code }));
    if (!this.settled) this.exchange.settle(this, new AttemptFailure('timeout', this.instance, message));
  }
}

/** One client request, across its attempts. */
class Exchange {
  readonly ctx: ProxyContext;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  readonly reqId: string;
  readonly started = performance.now();
  readonly headers: string[];
  readonly facts: RequestFacts = { hasBody: false, cookie: undefined, reqId: '' };
  readonly target: RouteTarget | undefined;
  body: RequestBody | undefined;
  retries = 0;
  bound: string | undefined;
  stickyOn = false;
  tried: Set<string> | undefined;
  firstTried: string | undefined;
  failures: string[] | undefined;
  current: Attempt | undefined;
  servedBy: string | undefined;
  /** Why the request was answered 4xx/5xx as its own fault, for the access log. */
  refused: string | undefined;
  /** Set while p-retry drives the attempts after the first. */
  waiting: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse, target: RouteTarget | undefined) {
    this.ctx = ctx;
    this.req = req;
    this.res = res;
    this.target = target;
    this.method = req.method ?? 'GET';
    const socket = req.socket as Socket & { encrypted?: boolean };
    this.headers = upstreamRequestHeaders(req.rawHeaders, socket.remoteAddress ?? '', socket.encrypted === true, ctx.nextRequestId, this.facts);
    this.reqId = this.facts.reqId;
  }

  closed(): void {
    const { ctx } = this;
    ctx.inFlight -= 1;
    const attempt = this.current;
    if (attempt && !attempt.settled) this.settle(attempt, new ClientGone());
    const durationMs = Math.round((performance.now() - this.started) * 10) / 10;
    const status = this.res.writableFinished ? this.res.statusCode : 499;
    ctx.counters.request(status, durationMs);
    ctx.deps.onRequest?.(status, durationMs, this.servedBy);
    if (ctx.settings.accessLog) {
      ctx.accessLog({ reqId: this.reqId, method: this.method, url: this.req.url, status, durationMs, instance: this.servedBy, attempts: this.attempts(), failures: this.failures, refused: this.refused });
    }
  }

  /** The instances this request may go to: the service's, or the matched route's. */
  table(): RoutingTable {
    return this.target ? this.target.table : this.ctx.deps.table();
  }

  attempts(): number {
    return this.tried?.size ?? (this.firstTried ? 1 : 0);
  }

  hasTried(id: string): boolean {
    return this.tried ? this.tried.has(id) : this.firstTried === id;
  }

  triedSet(): ReadonlySet<string> {
    if (!this.tried) this.tried = new Set(this.firstTried ? [this.firstTried] : []);
    return this.tried;
  }

  start(body: RequestBody): void {
    const { ctx } = this;
    this.body = body;
    this.retries = body.replayable ? ctx.settings.retries : 0;
    // Sticky: the instance the client's cookie names is tried first; any
    // other instance that serves it sends a cookie naming itself.
    const table = this.table();
    this.stickyOn = ctx.sticky.enabled(table);
    this.bound = this.stickyOn ? ctx.sticky.boundInstance(table, this.facts.cookie) : undefined;
    const instance = ctx.picker.pick(table, EMPTY_SET, ctx.now(), this.bound);
    if (!instance) return this.finish(new NoInstanceLeft());
    this.dispatch(instance, 1);
  }

  dispatch(instance: Instance, attemptNumber: number): void {
    const { ctx } = this;
    if (this.firstTried === undefined) this.firstTried = instance.id;
    else (this.triedSet() as Set<string>).add(instance.id);
    // A 502/503/504 is passed through when no other instance could take over.
    const statusRetryAllowed = attemptNumber <= this.retries && ctx.retryStatus.size > 0 && mayRetry(this.method, 'status') && ctx.picker.hasAlternative(this.table(), this.tried ?? this.firstTried!);
    const attempt = new Attempt(this, instance, statusRetryAllowed, this.stickyOn && instance.id !== this.bound ? ctx.sticky.setCookie(instance.id) : undefined);
    this.current = attempt;
    let running = ctx.inFlightByInstance.get(instance.id);
    if (!running) ctx.inFlightByInstance.set(instance.id, (running = new InFlightList()));
    running.add(attempt);
    ctx.states.begin(instance.id);
    const body = this.body!;
    ctx.poolFor(instance).dispatch({
      // Each instance gets the path it declared: with its route's prefix taken off if it asked (;strip).
      path: this.target?.strips.has(instance.id) ? stripPrefix(this.req.url ?? '/', this.target.route.path) : (this.req.url ?? '/'),
      method: this.method as Dispatcher.HttpMethod,
      headers: this.headers,
      body: body.replayable ? (body.bytes.length > 0 ? body.bytes : null) : body.stream,
    }, attempt as unknown as Dispatcher.DispatchHandler);
  }

  settle(attempt: Attempt, failure: AttemptFailure | ClientGone | RequestAtFault | undefined): void {
    if (attempt.settled) return;
    attempt.settled = true;
    const { ctx } = this;
    const id = attempt.instance.id;
    ctx.inFlightByInstance.get(id)?.delete(attempt);
    if (failure === undefined) {
      ctx.states.succeeded(id);
      ctx.counters.attempt(id, 'ok');
      this.servedBy = id;
      if (this.waiting) this.waiting.resolve();
      return;
    }
    if (failure instanceof ClientGone || failure instanceof RequestAtFault) {
      // Not the instance's doing: no failure, no retry, no ejection.
      ctx.states.abandoned(id);
      attempt.abortUpstream?.();
      if (this.waiting) return this.waiting.reject(failure);
      if (failure instanceof RequestAtFault) this.finish(failure);
      return;
    }
    const counts = countsAgainstInstance(failure.kind, false);
    ctx.counters.attempt(id, failure.kind);
    // Ejected: the balancer stops routing to it and abandons its unanswered requests.
    if (ctx.states.failed(id, failure.kind, failure.message, counts, ctx.now())) ctx.deps.onEjected(attempt.instance, failure.kind, failure.message);
    if (this.waiting) return this.waiting.reject(failure);
    this.afterFirstFailure(failure);
  }

  afterFirstFailure(failure: AttemptFailure): void {
    const { ctx } = this;
    (this.failures ??= []).push(`${failure.instance.id} ${failure.kind}: ${failure.message}`);
    if (this.retries === 0 || !this.mayContinue(failure)) return this.finish(failure);
    ctx.counters.retry(failure.kind);
    // A retry is due: p-retry drives the remaining attempts.
    pRetry(
      (attemptNumber) => new Promise<void>((resolve, reject) => {
        if (this.res.destroyed) throw new AbortError(new ClientGone());
        const instance = ctx.picker.pick(this.table(), this.triedSet(), ctx.now(), this.bound);
        if (!instance) throw new AbortError(new NoInstanceLeft());
        this.waiting = { resolve, reject };
        this.dispatch(instance, attemptNumber + 1);
      }),
      {
        retries: this.retries - 1,
        minTimeout: 0,
        maxTimeout: 0,
        randomize: false,
        shouldRetry: ({ error }) => error instanceof AttemptFailure && this.mayContinue(error),
        onFailedAttempt: ({ error, retriesLeft }) => {
          if (!(error instanceof AttemptFailure)) return;
          (this.failures ??= []).push(`${error.instance.id} ${error.kind}: ${error.message}`);
          if (retriesLeft > 0 && this.mayContinue(error)) ctx.counters.retry(error.kind);
        },
      },
    ).then(() => undefined, (error: unknown) => this.finish(error));
  }

  mayContinue(failure: AttemptFailure): boolean {
    return mayRetry(this.method, failure.kind) && !this.res.headersSent && !this.res.destroyed;
  }

  /** No attempt answered: say why. */
  finish(error: unknown): void {
    const { res, method, ctx } = this;
    if (error instanceof ClientGone || res.destroyed) return;
    if (error instanceof RequestAtFault) {
      this.refused = error.message;
      return sendError(res, error.status, `${error.message} (the request was not sent to any instance)`);
    }
    const tried = this.attempts();
    const table = this.table();
    const { maxPerInstance } = ctx.settings;
    if (error instanceof NoInstanceLeft && tried === 0 && maxPerInstance > 0 && table.instances.length > 0) {
      // Every instance is at its in-flight cap: answer now rather than queue behind a slow one.
      ctx.counters.saturated += 1;
      return sendError(res, 503, `every instance already has ${maxPerInstance} requests in flight; try again shortly`);
    }
    if (error instanceof NoInstanceLeft && tried === 0) {
      ctx.counters.noInstance += 1;
      return sendError(res, 503, ctx.deps.emptyReason());
    }
    if (error instanceof AttemptFailure && !mayRetry(method, error.kind)) {
      return sendError(res, 502, `${error.instance.id} failed (${error.kind}: ${error.message}); a ${method} that may have reached the app is not retried`);
    }
    return sendError(res, 502, `no instance could answer after ${tried} attempt(s): ${this.failures?.join('; ') || String(error)}`);
  }
}

export function createProxyHandler(deps: ProxyDeps): ProxyHandler {
  const ctx = new ProxyContext(deps);
  const responseTimeouts = setInterval(() => ctx.sweepResponseTimeouts(), Math.min(1000, Math.max(20, Math.floor(deps.settings.responseTimeout / 10))));
  responseTimeouts.unref();
  return {
    handle: (req, res, target) => {
      try {
        ctx.handle(req, res, target);
      } catch (error) {
        ctx.logger.error({ err: error }, 'unexpected error while proxying');
        sendError(res, 502, 'internal balancer error');
      }
    },
    abandon: (instanceId, reason) => ctx.abandon(instanceId, reason),
    forget: (instanceId) => ctx.forget(instanceId),
    oldestUnanswered: (instanceId) => ctx.oldestUnanswered(instanceId),
    inFlight: () => ctx.inFlight,
    close: async () => {
      clearInterval(responseTimeouts);
      await ctx.close();
    },
  };
}

const EMPTY_SET: ReadonlySet<string> = new Set();
const EXCHANGE = Symbol('sempre.exchange');
type ExchangeResponse = ServerResponse & { [EXCHANGE]?: { closed(): void } };

function onResponseClose(this: ExchangeResponse): void {
  this[EXCHANGE]?.closed();
}
const NO_BODY: RequestBody = { replayable: true, bytes: Buffer.alloc(0) };

const ERROR_TITLES = { 400: 'Bad Request', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable' } as const;

function sendError(res: ServerResponse, status: keyof typeof ERROR_TITLES, message: string): void {
  if (res.headersSent || res.destroyed) return;
  const body = `${status} ${ERROR_TITLES[status]}: ${message}\n`;
  // Retry-After only where trying again may help: the request's own fault will not go away.
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...(status >= 502 ? { 'retry-after': '1' } : {}), 'cache-control': 'no-store' });
  res.end(body);
}
