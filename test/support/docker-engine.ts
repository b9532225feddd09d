// The Docker engine for the compose test (root): the one already running, or
// one started here with the options that work on these machines (vfs storage,
// no iptables, no default bridge) and stopped again at the end. Its data root
// is kept in .run/docker so the images built here are reused by the next run;
// its sockets and pid file live under /run/sempre-docker and are removed.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../lab/consul-binary.ts';
import { startProcess, waitUntilUp, type ManagedProcess } from '../../lab/processes.ts';

/** Debian's docker.io CLI when installed: the engine's own version, not another client on PATH. */
export const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
const DOCKERD = existsSync('/usr/sbin/dockerd') ? '/usr/sbin/dockerd' : 'dockerd';
const EXEC_ROOT = '/run/sempre-docker';
export const DATA_ROOT = join(PROJECT_ROOT, '.run', 'docker');

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs a command without blocking the event loop (load keeps flowing); a failure names its exit code and stderr. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, [...args], { env: { ...process.env, ...options.env }, cwd: options.cwd ?? PROJECT_ROOT, timeout: options.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      const e = error as { code?: number | string; signal?: string };
      reject(new Error(`${command} ${args.join(' ')} failed (exit ${e.code ?? '-'}, signal ${e.signal ?? '-'}): ${stderr.trim().split('\n').slice(-15).join('\n')}`));
    });
  });
}

export interface DockerEngine {
  /** Environment that points the docker and docker-compose clients at this engine. */
  readonly env: NodeJS.ProcessEnv;
  /** False when an engine was already running: it is then left as found. */
  readonly startedHere: boolean;
  docker(args: readonly string[], options?: RunOptions): Promise<string>;
  /** Stops the engine if it was started here, and removes its runtime folder. */
  stop(): Promise<void>;
}

/** dockerd leaves the host's network namespace bind-mounted in its exec root (after --network host): unmount, then remove. */
async function removeRuntimeFolder(): Promise<void> {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((line) => line.split(' ')[4] ?? '').filter((point) => point.startsWith(`${EXEC_ROOT}/`));
  for (const point of mounts.sort().reverse()) await run('umount', [point]);
  rmSync(EXEC_ROOT, { recursive: true, force: true });
}

async function answers(env: NodeJS.ProcessEnv): Promise<boolean> {
  return run(DOCKER_CLI, ['version', '--format', '{{.Server.Version}}'], { env, timeoutMs: 5000 }).then(() => true, () => false);
}

export async function useDockerEngine(logDir: string): Promise<DockerEngine> {
  const make = (env: NodeJS.ProcessEnv, proc?: ManagedProcess): DockerEngine => ({
    env,
    startedHere: proc !== undefined,
    docker: (args, options = {}) => run(DOCKER_CLI, args, { ...options, env: { ...env, ...options.env } }),
    stop: async () => {
      if (!proc) return;
      // dockerd stops its containerd and every container with it.
      await proc.stop(30_000);
      await removeRuntimeFolder();
    },
  });
  if (await answers({})) return make({});
  mkdirSync(EXEC_ROOT, { recursive: true });
  mkdirSync(DATA_ROOT, { recursive: true });
  const host = `unix://${EXEC_ROOT}/docker.sock`;
  const proc = startProcess({
    name: 'dockerd', command: DOCKERD, logDir,
    args: ['--storage-driver=vfs', '--iptables=false', '--bridge=none', `--data-root=${DATA_ROOT}`, `--exec-root=${EXEC_ROOT}/exec`,
      `--pidfile=${EXEC_ROOT}/docker.pid`, `--host=${host}`],
  });
  const env = { DOCKER_HOST: host };
  try {
    await waitUntilUp(proc, 'dockerd to answer', () => answers(env), 60_000);
  } catch (error) {
    await proc.stop(5000);
    await removeRuntimeFolder();
    throw error;
  }
  return make(env, proc);
}
