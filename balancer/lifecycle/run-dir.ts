// The balancer's run directory: the main process's pid and the outcome of
// the latest reload, for bin/sempre-balancer-reload (and systemd's
// ExecReload) to signal the main process and wait for the answer.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ReloadOutcome {
  /** Counts reloads since the main process started: the command waits for it to move. */
  seq: number;
  ok: boolean;
  /** What was reloaded, or why the reload was refused. */
  reason: string;
  /** The main process that answered (a restarted one starts again from seq 0). */
  pid: number;
  generation: number;
  at: string;
  durationMs: number;
}

/** --run-dir, else systemd's RuntimeDirectory=, else one per port under the temporary directory. */
export function runDirFor(given: string, port: number, env: NodeJS.ProcessEnv = process.env): string {
  return given || env.RUNTIME_DIRECTORY?.split(':')[0] || join(tmpdir(), `sempre-balancer-${port}`);
}

export const mainPidFile = (dir: string) => join(dir, 'main.pid');
export const reloadFile = (dir: string) => join(dir, 'reload.json');

export function writeMainPid(dir: string, pid = process.pid): void {
  mkdirSync(dir, { recursive: true });
  writeAtomically(mainPidFile(dir), `${pid}\n`);
}

export function writeReloadOutcome(dir: string, outcome: ReloadOutcome): void {
  writeAtomically(reloadFile(dir), `${JSON.stringify(outcome)}\n`);
}

export function readMainPid(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(mainPidFile(dir), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function readReloadOutcome(dir: string): ReloadOutcome | undefined {
  try {
    return JSON.parse(readFileSync(reloadFile(dir), 'utf8')) as ReloadOutcome;
  } catch {
    return undefined;
  }
}

/** A reader never sees half a file. */
function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}
