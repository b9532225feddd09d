// Child processes that are always cleaned up: each one's output goes to its
// own log file, its last stderr lines are kept for error messages, and every
// process still running when this process exits is killed.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly exited: Promise<ExitInfo>;
  running(): boolean;
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs?: number): Promise<ExitInfo>;
  /** Last lines the process wrote to stderr or stdout. */
  tail(): string;
}

/** Raised when a child exits or fails where we needed it running. */
export class ChildProcessError extends Error {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly tail: string;
  constructor(name: string, info: ExitInfo, tail: string) {
    super(`${name} exited (code ${info.code ?? '-'}, signal ${info.signal ?? '-'})${tail ? `:\n${tail}` : ''}`);
    this.name = 'ChildProcessError';
    this.exitCode = info.code;
    this.signal = info.signal;
    this.tail = tail;
  }
}

const live = new Set<ChildProcess>();
let hooked = false;
function killAllOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        // A stopped (SIGSTOP) process must be continued to die cleanly.
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export interface StartOptions {
  name: string;
  command: string;
  args: readonly string[];
  logDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const TAIL_LINES = 30;

export function startProcess(options: StartOptions): ManagedProcess {
  killAllOnExit();
  mkdirSync(options.logDir, { recursive: true });
  const logFile = join(options.logDir, `${options.name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  // Own process group: a Ctrl-C in the terminal reaches only the launcher,
  // which then stops children in order.
  const child = spawn(options.command, [...options.args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  live.add(child);
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    log.write(chunk);
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) lines.push(line);
    }
    if (lines.length > TAIL_LINES) lines.splice(0, lines.length - TAIL_LINES);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exitInfo: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      live.delete(child);
      resolve(exitInfo);
    });
    child.once('error', (error) => {
      lines.push(String(error));
      exitInfo = { code: null, signal: null };
      live.delete(child);
      resolve(exitInfo);
    });
  });
  void exited.then(() => log.end());
  const signal = (sig: NodeJS.Signals) => {
    if (exitInfo) return;
    try {
      child.kill(sig);
    } catch {
      // gone in between
    }
  };
  return {
    name: options.name,
    pid: child.pid ?? -1,
    logFile,
    exited,
    running: () => exitInfo === undefined,
    signal,
    stop: async (graceMs = 5000) => {
      if (exitInfo) return exitInfo;
      signal('SIGCONT');
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), graceMs);
      const info = await exited;
      clearTimeout(timer);
      return info;
    },
    tail: () => lines.join('\n'),
  };
}

/** Polls `check` until it returns a value other than undefined/false, or fails at the deadline. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves when `process` is up by `check`, rejects early if it exits first. */
export async function waitUntilUp<T>(proc: ManagedProcess, what: string, check: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const died = proc.exited.then((info) => {
    throw new ChildProcessError(proc.name, info, proc.tail());
  });
  died.catch(() => undefined); // exiting later, once up, is not this wait's business
  return Promise.race([waitFor(what, check, timeoutMs), died]);
}
