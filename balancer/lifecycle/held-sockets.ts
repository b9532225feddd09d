// Listening sockets that outlive the processes serving them. The main
// process holds each socket and its serving workers inherit it as a file
// descriptor: a worker that exits (a crash, a reload retiring it) closes only
// its own copy, the socket stays listening, and connections that arrive
// meanwhile wait in the kernel's accept queue instead of being refused.
//
// Where a socket comes from, in order:
// - systemd socket activation (a sempre-balancer.socket unit) or
//   bin/sempre-socket-keeper, which does the same for the local stack and the
//   lab: LISTEN_FDS sockets from fd 3 on, named by LISTEN_FDNAMES. They
//   outlive the main process too (kill -9 refuses nothing).
// - otherwise the main process binds one itself: it outlives every worker,
//   not the main process.
//
// Why not SO_REUSEPORT: each process then has its own accept queue, and the
// connections waiting in a retiring process's queue are reset when it closes
// its socket (HAProxy hands its sockets over with -x for the same reason).
import net from 'node:net';
import { getSystemErrorName } from 'node:util';

/** First inherited descriptor in systemd's protocol (sd_listen_fds(3)). */
const SD_LISTEN_FDS_START = 3;

export type SocketName = 'public' | 'admin';

export interface HeldSocket {
  readonly fd: number;
  /** Where it listens, as far as known ("inherited fd 3" for an inherited one). */
  readonly where: string;
  readonly inherited: boolean;
  close(): void;
}

/**
 * The sockets systemd (or the keeper) passed, by name. Unnamed ones: the
 * first is the public socket, the second the admin one. LISTEN_PID, when set,
 * must be this process (as sd_listen_fds checks); the keeper leaves it unset.
 */
export function inheritedSockets(env: NodeJS.ProcessEnv, pid = process.pid): Map<SocketName, HeldSocket> {
  const found = new Map<SocketName, HeldSocket>();
  const count = Number(env.LISTEN_FDS ?? 0);
  if (!Number.isInteger(count) || count <= 0) return found;
  if (env.LISTEN_PID && Number(env.LISTEN_PID) !== pid) return found;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  for (let i = 0; i < count; i += 1) {
    const fd = SD_LISTEN_FDS_START + i;
    const given = names[i];
    const name: SocketName | undefined = given === 'public' || given === 'admin' ? given : !given || given === 'unknown' ? (['public', 'admin'] as const)[i] : undefined;
    if (!name || found.has(name)) continue;
    found.set(name, { fd, where: `inherited fd ${fd}${given ? ` (${given})` : ''}`, inherited: true, close: () => undefined });
  }
  return found;
}

interface ServerHandle {
  fd: number;
  close(): void;
}

/**
 * Binds host:port without accepting on it (the workers listen and accept).
 * node:cluster's primary makes its shared handles the same way; net offers
 * no public call for a socket that is bound but not accepted on.
 */
export function bindHeldSocket(host: string, port: number): HeldSocket {
  const family = net.isIPv6(host) ? 6 : 4;
  const create = (net as unknown as { _createServerHandle: (address: string, port: number, addressType: number, fd?: number, flags?: number) => ServerHandle | number })._createServerHandle;
  const handle = create(host, port, family, undefined, 0);
  if (typeof handle === 'number') throw new Error(`cannot listen on ${host}:${port}: ${getSystemErrorName(handle)}`);
  return { fd: handle.fd, where: `${host}:${port}`, inherited: false, close: () => handle.close() };
}
