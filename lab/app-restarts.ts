// The lab's apps run under lab/restarter.ts (systemd's Restart=always in the
// lab): where each keeps its app's PID and its hold file, the command that
// starts it, and what faults and tests use to reach the app itself.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './consul-binary.ts';

export const RESTARTER_SCRIPT = join(PROJECT_ROOT, 'lab/restarter.ts');

/** What a supervised app's lab process record carries besides the restarter's own PID. */
export interface Restarted {
  /** The app's current PID, kept by its restarter (the agent's --app-pid-file). */
  pidFile?: string;
  /** While this file exists, the restarter does not start the app again. */
  holdFile?: string;
  /**
   * A balancer under bin/sempre-socket-keeper: its --run-dir (main.pid,
   * reload.json); `pidFile` is then the main process's PID file, and the
   * record's own PID the keeper's.
   */
  runDir?: string;
}

export function restartFiles(dir: string, name: string): Required<Pick<Restarted, 'pidFile' | 'holdFile'>> {
  return { pidFile: join(dir, `${name}.pid`), holdFile: join(dir, `${name}.hold`) };
}

/** The restarter's command line around the app's. */
export function restartedCommand(node: string, files: Required<Pick<Restarted, 'pidFile' | 'holdFile'>>, app: readonly string[]): string[] {
  return [node, RESTARTER_SCRIPT, '--pid-file', files.pidFile, '--hold-file', files.holdFile, '--', ...app];
}

/**
 * The PID to signal for a lab process: a supervised app's own (from its PID
 * file; undefined before the restarter wrote it), else the process's.
 */
export function targetPid(proc: Restarted & { pid: number }): number | undefined {
  if (!proc.pidFile) return proc.pid;
  let text = '';
  try {
    text = readFileSync(proc.pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The app stays down when it exits, until releaseRestarts (no-op for an unsupervised process). */
export function holdRestarts(proc: Restarted): void {
  if (proc.holdFile) writeFileSync(proc.holdFile, `held by a drill fault since ${new Date().toISOString()}\n`);
}

export function releaseRestarts(proc: Restarted): void {
  if (proc.holdFile) rmSync(proc.holdFile, { force: true });
}
