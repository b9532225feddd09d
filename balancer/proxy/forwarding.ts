// The headers a proxy adds so the app knows who the client is and which
// request this is: X-Forwarded-For/Proto/Host and X-Request-Id. Shared by the
// HTTP path and the tunnels (WebSocket upgrades).
import type { IncomingMessage } from 'node:http';

/**
 * A client's X-Request-Id is kept only when it is a plain token: it ends up
 * in logs and in the app's headers, so nothing with spaces, quotes or
 * control characters, and nothing long, gets through.
 */
export function acceptedRequestId(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && /^[\w.:@+\/=-]{1,128}$/.test(header) ? header : undefined;
}

/** Request IDs unique to this process: a prefix from the PID and start time, then a counter. */
export function requestIdSource(): (req: IncomingMessage) => string {
  const prefix = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  let sequence = 0;
  return (req) => acceptedRequestId(req.headers['x-request-id']) ?? `${prefix}-${(sequence += 1).toString(36)}`;
}

/** Sets the forwarding headers once per client request (not per attempt, or retries would repeat them). */
export function setForwardingHeaders(req: IncomingMessage, reqId: string): void {
  const remote = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  req.headers['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${remote}` : remote;
  req.headers['x-forwarded-proto'] = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  // HTTP/2 names the host :authority.
  req.headers['x-forwarded-host'] = req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? '';
  req.headers['x-request-id'] = reqId;
}
