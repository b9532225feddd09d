// What the main process and its workers say to each other about a worker's
// life (the workers' own link, verdicts and reports, is worker-link.ts).

/** Worker → main: listening and Consul answered (or the wait for it ended): it may take the traffic. */
export interface Ready { sempre: 'ready' }
/** Worker → main: it cannot serve (a bad option, certificate or address; broken code): the reload is refused. */
export interface Failed { sempre: 'failed'; reason: string }
/** Main → worker: a newer generation serves; stop accepting, finish, exit. */
export interface Retire { sempre: 'retire' }

export type WorkerToMain = Ready | Failed;

export function isWorkerToMain(value: unknown): value is WorkerToMain {
  const kind = (value as { sempre?: unknown } | null)?.sempre;
  return kind === 'ready' || kind === 'failed';
}

export function isRetire(value: unknown): value is Retire {
  return (value as { sempre?: unknown } | null)?.sempre === 'retire';
}

/** The environment variables a worker is started with (beside the options). */
export const WORKER_ENV = {
  index: 'SEMPRE_WORKER_INDEX',
  generation: 'SEMPRE_GENERATION',
  count: 'SEMPRE_WORKER_COUNT',
  publicFd: 'SEMPRE_PUBLIC_FD',
  adminFd: 'SEMPRE_ADMIN_FD',
} as const;

/** The descriptors a worker gets its listening sockets on (after stdin, stdout, stderr and the IPC channel). */
export const WORKER_PUBLIC_FD = 4;
export const WORKER_ADMIN_FD = 5;
