// WebSocket (and any other HTTP Upgrade) tunnels to the instances, carried by
// http-proxy-3's ws() once the connection to the instance is up.
//
// We dial the instance ourselves first: http-proxy-3 closes the client's
// socket when its own dial fails, and a dial that failed sent nothing, so it
// may be tried on another instance. The connected socket is then handed to
// http-proxy-3 through a one-socket agent.
//
// Open tunnels are tracked per instance because nothing else would close
// them: a frozen or partitioned instance never does, and Node's
// closeAllConnections() skips upgraded sockets (nodejs/node#53536).
import { Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Instance } from '../../shared/instance.ts';
import { instanceOrigin } from '../../shared/instance.ts';
import type { Logger } from '../../shared/logger.ts';
import { rawAnswer } from './raw-answer.ts';
import { requestIdSource, setForwardingHeaders } from './forwarding.ts';
import type { InstanceStates } from '../health/instance-state.ts';
import type { Picker } from './picker.ts';
import type { FailureKind } from './retry-policy.ts';
import type { RouteTarget } from '../discovery/route-table.ts';
import type { RoutingTable } from '../discovery/routing-table.ts';
import { stripPrefix } from '../../shared/routes.ts';
import type { Sticky } from './sticky.ts';

export interface TunnelSettings {
  connectTimeout: number;
  retries: number;
  tunnelIdleTimeout: number;
  tunnelDrain: number;
}

/** Why a tunnel ended, as counted in sempre_tunnels_total{outcome}. */
export type TunnelEnd = 'closed' | 'closed-idle' | 'closed-ejected' | 'closed-removed' | 'closed-drain' | 'closed-shutdown';

export interface TunnelMetrics {
  tunnels: { inc(labels: { outcome: string }): void };
}

export interface TunnelDeps {
  settings: TunnelSettings;
  logger: Logger;
  table: () => RoutingTable;
  states: InstanceStates;
  picker: Picker;
  sticky: Sticky;
  metrics: TunnelMetrics;
  emptyReason: () => string;
  /** Passive health ejected the instance after a failed dial. */
  onEjected: (instance: Instance, kind: FailureKind, message: string) => void;
  now?: () => number;
}

export interface Tunnels {
  /** `target`: the route that matched (with --routing routes). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target?: RouteTarget): void;
  /** Closes the instance's tunnels at once (it failed or left rotation unplanned); returns how many. */
  closeInstance(instanceId: string, end: TunnelEnd): number;
  /** The instance went into maintenance or drains: its tunnels may go on for the drain time. */
  drainInstance(instanceId: string): number;
  /** The instance is back in rotation: its draining tunnels may stay. */
  cancelDrain(instanceId: string): void;
  open(): number;
  openOn(instanceId: string): number;
  closeAll(end: TunnelEnd): void;
}

interface Tunnel {
  readonly instance: Instance;
  readonly client: Duplex;
  upstream: Socket;
  end: TunnelEnd;
  drainTimer: NodeJS.Timeout | undefined;
}

/** Hands http-proxy-3 the socket we already connected, instead of dialling again. */
class ConnectedSocketAgent extends Agent {
  private readonly socket: Socket;
  constructor(socket: Socket) {
    super({ keepAlive: false });
    this.socket = socket;
  }
  override createConnection(): Socket {
    return this.socket;
  }
}

function dial(instance: Instance, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: instance.address, port: instance.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`connect timeout after ${timeoutMs} ms`), { code: 'ECONNECT_TIMEOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

export function createTunnels(deps: TunnelDeps): Tunnels {
  const { settings, logger, states, picker, sticky, metrics } = deps;
  const now = deps.now ?? Date.now;
  const nextRequestId = requestIdSource();
  const proxy = createProxyServer({ xfwd: false });
  // http-proxy-3 drops every upgrade that is not "websocket"; any HTTP
  // Upgrade (RFC 9110 §7.8) is tunnelled here.
  const passes = proxy as unknown as { wsPasses: Array<{ name: string }> };
  passes.wsPasses = passes.wsPasses.filter((pass) => pass.name !== 'checkMethodAndHeader');
  proxy.on('error', () => undefined); // each ws() call has its own callback

  const byInstance = new Map<string, Set<Tunnel>>();
  const pending = new WeakMap<Duplex, { instance: Instance; setCookie: string | undefined; reqId: string }>();
  let openCount = 0;

  const track = (tunnel: Tunnel) => {
    let set = byInstance.get(tunnel.instance.id);
    if (!set) byInstance.set(tunnel.instance.id, (set = new Set()));
    set.add(tunnel);
    openCount += 1;
    metrics.tunnels.inc({ outcome: 'opened' });
    tunnel.client.once('close', () => {
      clearTimeout(tunnel.drainTimer);
      openCount -= 1;
      set.delete(tunnel);
      if (set.size === 0 && byInstance.get(tunnel.instance.id) === set) byInstance.delete(tunnel.instance.id);
      tunnel.upstream.destroy();
      metrics.tunnels.inc({ outcome: tunnel.end });
    });
  };

  const close = (tunnel: Tunnel, end: TunnelEnd) => {
    tunnel.end = end;
    tunnel.client.destroy();
    tunnel.upstream.destroy();
  };

  // Before http-proxy-3's own 'upgrade' listener writes the 101 to the client:
  // name the instance and (re)bind a sticky client, then start tracking.
  proxy.on('proxyReqWs', (proxyReq: ClientRequest, _req: IncomingMessage, client: Duplex) => {
    const started = pending.get(client);
    if (!started) return;
    proxyReq.once('upgrade', (proxyRes: IncomingMessage, upstream: Socket) => {
      pending.delete(client);
      proxyRes.headers['x-served-by'] = started.instance.id;
      if (started.setCookie) {
        const existing = proxyRes.headers['set-cookie'] ?? [];
        proxyRes.headers['set-cookie'] = [...existing, started.setCookie];
      }
      const tunnel: Tunnel = { instance: started.instance, client, upstream, end: 'closed', drainTimer: undefined };
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      track(tunnel);
      // Idle in both directions: every byte either way passes the client socket.
      (client as Socket).setTimeout(settings.tunnelIdleTimeout);
      client.once('timeout', () => close(tunnel, 'closed-idle'));
      logger.debug({ reqId: started.reqId, instance: started.instance.id, url: _req.url }, 'tunnel open');
    });
  });

  const handleUpgrade = async (req: IncomingMessage, client: Duplex, head: Buffer, target: RouteTarget | undefined) => {
    const reqId = nextRequestId(req.headers['x-request-id']);
    setForwardingHeaders(req, reqId);
    const url = req.url ?? '/';
    const tableNow = () => target?.table ?? deps.table();
    const table = tableNow();
    if (table.instances.length === 0) {
      metrics.tunnels.inc({ outcome: 'failed' });
      rawAnswer(client, 503, 'Service Unavailable', deps.emptyReason(), { 'Retry-After': '1' });
      return;
    }
    const stickyOn = sticky.enabled(table);
    const bound = stickyOn ? sticky.boundInstance(table, req.headers.cookie) : undefined;
    const tried = new Set<string>();
    const failures: string[] = [];
    // A failed dial sent nothing: it is tried on another instance, up to 1 + retries instances.
    for (let attempt = 0; attempt <= settings.retries; attempt += 1) {
      const instance = picker.pick(tableNow(), tried, now(), bound);
      if (!instance) break;
      tried.add(instance.id);
      states.begin(instance.id);
      let upstream: Socket;
      try {
        upstream = await dial(instance, settings.connectTimeout);
      } catch (error) {
        const message = (error as Error).message;
        failures.push(`${instance.id}: ${message}`);
        if (states.failed(instance.id, 'connect', message, true, now())) deps.onEjected(instance, 'connect', message);
        if (client.destroyed) return;
        continue;
      }
      states.succeeded(instance.id);
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      const setCookie = stickyOn && bound !== instance.id ? sticky.setCookie(instance.id) : undefined;
      // The path this instance declared: its route's prefix taken off if it asked (;strip).
      req.url = target?.strips.has(instance.id) ? stripPrefix(url, target.route.path) : url;
      pending.set(client, { instance, setCookie, reqId });
      proxy.ws(req, client, head, { target: instanceOrigin(instance), agent: new ConnectedSocketAgent(upstream) }, (error: Error & { code?: string }) => {
        // The upgrade broke after the connection was made (http-proxy-3 closes the client socket).
        pending.delete(client);
        upstream.destroy();
        logger.warn({ reqId, instance: instance.id, err: error.code ?? error.message }, 'tunnel failed');
      });
      return;
    }
    metrics.tunnels.inc({ outcome: 'failed' });
    if (tried.size === 0) rawAnswer(client, 503, 'Service Unavailable', `every instance already has its limit of requests in flight or is out of rotation; ${deps.emptyReason()}`, { 'Retry-After': '1' });
    else rawAnswer(client, 502, 'Bad Gateway', `no instance could take the upgrade after ${tried.size} attempt(s): ${failures.join('; ')}`, { 'Retry-After': '1' });
  };

  return {
    handleUpgrade: (req, socket, head, target) => {
      handleUpgrade(req, socket, head, target).catch((error: unknown) => {
        logger.error({ err: error }, 'unexpected error while opening a tunnel');
        socket.destroy();
      });
    },
    closeInstance(instanceId, end) {
      const set = byInstance.get(instanceId);
      if (!set || set.size === 0) return 0;
      const count = set.size;
      for (const tunnel of [...set]) close(tunnel, end);
      logger.warn({ instance: instanceId, tunnels: count, reason: end }, 'closed the tunnels of an instance that left rotation');
      return count;
    },
    drainInstance(instanceId) {
      const set = byInstance.get(instanceId);
      if (!set || set.size === 0) return 0;
      for (const tunnel of set) {
        if (tunnel.drainTimer) continue;
        tunnel.drainTimer = setTimeout(() => close(tunnel, 'closed-drain'), settings.tunnelDrain);
        tunnel.drainTimer.unref();
      }
      logger.info({ instance: instanceId, tunnels: set.size, drainMs: settings.tunnelDrain }, 'instance draining: its open tunnels close at the drain deadline');
      return set.size;
    },
    cancelDrain(instanceId) {
      for (const tunnel of byInstance.get(instanceId) ?? []) {
        clearTimeout(tunnel.drainTimer);
        tunnel.drainTimer = undefined;
      }
    },
    open: () => openCount,
    openOn: (instanceId) => byInstance.get(instanceId)?.size ?? 0,
    closeAll(end) {
      for (const set of [...byInstance.values()]) for (const tunnel of [...set]) close(tunnel, end);
    },
  };
}
