// The end of a worker: stop taking connections, let the requests in flight
// and the open tunnels finish within --shutdown-timeout (--tunnel-drain for
// tunnels when retired by a reload), then close what is left, the
// background work, the pools and the admin listener.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Server as NetServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../shared/logger.ts';
import type { TunnelEnd } from '../proxy/tunnels.ts';

/**
 * A retiring worker (reload, or its main process gone) waits this long for the clients of its
 * keep-alive connections to take their `Connection: close` before it closes the rest: under load
 * every connection carries a request within it; one still idle after it is rarely used.
 */
const RETIRE_IDLE_GRACE_MS = 1000;

/** One service's traffic, as the shutdown waits for it (a service runtime). */
export interface DrainingService {
  readonly proxy: { inFlight(): number };
  readonly tunnels: { open(): number; closeAll(end: TunnelEnd): void };
  close(): Promise<void>;
}

export interface ShutdownParts {
  /** The stop signal's reason: 'retire' or 'orphaned' (see below), anything else is a stop. */
  reason: unknown;
  server: Server;
  admin: Server;
  /** Read afresh at each look: a routed service may still come or go while draining. */
  runtimes: ReadonlyMap<string, DrainingService>;
  /** Stops the watches, timers and the link between workers. */
  stopBackground: () => void;
  logger: Logger;
  now: () => number;
  timeoutMs: number;
  tunnelDrainMs: number;
}

export async function shutDownGracefully({ reason, server, admin, runtimes, stopBackground, logger, now, timeoutMs, tunnelDrainMs }: ShutdownParts): Promise<void> {
  const inFlight = () => [...runtimes.values()].reduce((n, r) => n + r.proxy.inFlight(), 0);
  const tunnels = () => [...runtimes.values()].reduce((n, r) => n + r.tunnels.open(), 0);
  // stop: SIGTERM. retire: a reload's newer workers serve, on the same sockets,
  // with their own view of Consul and the admin listener; tunnels may go on
  // until --tunnel-drain. orphaned: the main process died (it is being
  // restarted): tunnels close now so it is not held up.
  const mode = reason === 'retire' || reason === 'orphaned' ? reason as string : 'stop';
  logger.info({ mode, inFlight: inFlight(), tunnels: tunnels(), timeoutMs, ...(mode === 'retire' ? { tunnelDrainMs } : {}) }, 'shutting down: no new connections, finishing in-flight requests and open tunnels');
  const stopStartedAt = now();
  if (mode === 'stop') {
    server.close();
    server.closeIdleConnections();
  } else {
    // Newer workers take the new connections on the same socket. Closing the idle keep-alive
    // connections now would race with clients that just sent their next request on one, which a
    // busy event loop has not read yet: a reset (2–23 per reload at 500 GET/s in the lab's
    // balancer-reload drill). Instead each is told `Connection: close` with its next answer; those
    // still open RETIRE_IDLE_GRACE_MS later, rarely used, are closed below. (http.Server#close would
    // close the idle ones at once: net.Server's only stops accepting.)
    server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => { res.shouldKeepAlive = false; });
    NetServer.prototype.close.call(server);
  }
  let backgroundStopped = false;
  if (mode !== 'stop') {
    admin.close();
    admin.closeIdleConnections();
    stopBackground();
    backgroundStopped = true;
  }
  if (mode === 'orphaned') for (const runtime of runtimes.values()) runtime.tunnels.closeAll('closed-shutdown');
  const deadline = now() + timeoutMs;
  const tunnelDeadline = mode === 'retire' ? now() + tunnelDrainMs : deadline;
  while ((inFlight() > 0 && now() < deadline) || (tunnels() > 0 && now() < tunnelDeadline)) await sleep(50);
  if (mode !== 'stop') {
    const open = () => new Promise<number>((resolve) => server.getConnections((_error, count) => resolve(count ?? 0)));
    while ((await open()) > 0 && now() < stopStartedAt + RETIRE_IDLE_GRACE_MS) await sleep(50);
  }
  if (inFlight() > 0 || tunnels() > 0) logger.warn({ inFlight: inFlight(), tunnels: tunnels() }, 'shutdown timeout: closing remaining requests and tunnels');
  server.closeAllConnections();
  // closeAllConnections() skips upgraded sockets (nodejs/node#53536).
  for (const runtime of runtimes.values()) runtime.tunnels.closeAll('closed-shutdown');
  if (!backgroundStopped) stopBackground();
  await Promise.all([...runtimes.values()].map((r) => r.close()));
  admin.close();
  admin.closeAllConnections();
}
