// The end of a worker: stop taking connections, let the requests in flight
// and the open tunnels finish within --shutdown-timeout (--tunnel-drain for
// tunnels when retired by a reload), then close what is left, the
// background work, the pools and the admin listener.
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../shared/logger.ts';
import type { TunnelEnd } from '../proxy/tunnels.ts';

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
  server.close();
  server.closeIdleConnections();
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
  if (inFlight() > 0 || tunnels() > 0) logger.warn({ inFlight: inFlight(), tunnels: tunnels() }, 'shutdown timeout: closing remaining requests and tunnels');
  server.closeAllConnections();
  // closeAllConnections() skips upgraded sockets (nodejs/node#53536).
  for (const runtime of runtimes.values()) runtime.tunnels.closeAll('closed-shutdown');
  if (!backgroundStopped) stopBackground();
  await Promise.all([...runtimes.values()].map((r) => r.close()));
  admin.close();
  admin.closeAllConnections();
}
