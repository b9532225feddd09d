// Child processes that are always cleaned up: each one writes straight to its
// own log file (no copying through this process, which would cost CPU under
// load), the file's last lines go into error messages, and every process
// still running when this process exits is killed.
import { AssertionError } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { closeSync, mkdirSync, openSync, readSync, fstatSync } from 'node:fs';
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
  /** Its standard output, when started with `stdout: 'pipe'`. */
  readonly stdout: Readable | null;
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
  /** Standard output elsewhere than the log file: a file descriptor, or a pipe read from `stdout`. */
  stdout?: number | 'pipe';
}

const TAIL_LINES = 30;

function tailOf(file: string): string[] {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(size, 8192);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      return buffer.toString('utf8').split('\n').filter((line) => line.trim()).slice(-TAIL_LINES);
    } finally {
      closeSync(fd);
    }
  } catch {
    return [];
  }
}

export function startProcess(options: StartOptions): ManagedProcess {
  killAllOnExit();
  mkdirSync(options.logDir, { recursive: true });
  const logFile = join(options.logDir, `${options.name}.log`);
  const logFd = openSync(logFile, 'a');
  // Own process group: a Ctrl-C in the terminal reaches only the launcher,
  // which then stops children in order.
  const child = spawn(options.command, [...options.args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', options.stdout ?? logFd, logFd],
    detached: true,
  });
  closeSync(logFd);
  live.add(child);
  const lines: string[] = [];
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
    tail: () => [...lines, ...tailOf(logFile)].join('\n'),
    stdout: child.stdout,
  };
}

/** A waitFor check may throw this to say "not yet" and why: the timeout names the last one. */
export class NotYet extends Error {
  override name = 'NotYet';
}

/**
 * Polls `check` until it returns a value other than undefined/false, or fails at the deadline.
 *
 * The rule: a check says "not yet" by returning undefined or false, or by throwing NotYet. An
 * error from what it waits on (a connection refused while a process starts) is "not yet" too,
 * and the last one is named at the deadline. A failed assertion never is: an AssertionError
 * thrown inside fails the wait at once. To check every answer seen while waiting, keep them and
 * assert after the wait (retrying would hide the ones that failed).
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (error instanceof AssertionError) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last ${lastError instanceof NotYet ? 'said' : 'error'}: ${lastError instanceof NotYet ? lastError.message : String(lastError)})` : ''}`);
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
