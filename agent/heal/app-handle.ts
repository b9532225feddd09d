// The app, as the heal loop sees it: its PID (for the evidence), how to
// restart it, and its last log lines. In production a systemd unit (the
// restart goes through the one sudo rule deploy/ ships); in the local stack
// and the lab a PID file, and the process is killed so that what started it
// starts it again; anything else a command.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { fileLogTail, journalLogTail, parseProcStat } from './evidence.ts';

const run = promisify(execFile);

export interface AppHandle {
  /** How the app is restarted, for the log. */
  readonly how: string;
  pid(): Promise<number | undefined>;
  /** Restarts the app (or has it restarted); resolves with what was done, rejects when it could not be. */
  restart(): Promise<string>;
  logTail(): Promise<string[]>;
}

export interface AppHandleOptions {
  appUnit: string;
  appPidFile: string;
  appLog: string;
  healCommand: string;
}

async function unitPid(unit: string): Promise<number | undefined> {
  const { stdout } = await run('systemctl', ['show', '-p', 'MainPID', '--value', unit], { timeout: 3000 });
  const pid = Number(stdout.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * The PID in the file ("PID [START]"), when that process is still the one
 * that started then: a stale file must not get another process killed.
 */
async function filePid(file: string): Promise<number | undefined> {
  const [pidText, start] = (await readFile(file, 'utf8').catch(() => '')).trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (!start) return pid;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat && String(parseProcStat(stat).startTicks) === start ? pid : undefined;
}

/** undefined when nothing says how to restart the app (healing then cannot be turned on). */
export function appHandle(options: AppHandleOptions): AppHandle | undefined {
  const pid = options.appUnit ? () => unitPid(options.appUnit).catch(() => undefined) : options.appPidFile ? () => filePid(options.appPidFile) : async () => undefined;
  const logTail = options.appLog ? fileLogTail(options.appLog) : options.appUnit ? journalLogTail(options.appUnit) : async () => [];
  if (options.healCommand) {
    return {
      how: `--heal-command ${options.healCommand}`,
      pid, logTail,
      restart: async () => {
        const appPid = await pid();
        const { stdout, stderr } = await run('/bin/sh', ['-c', options.healCommand], { timeout: 60_000, env: { ...process.env, SEMPRE_APP_PID: appPid ? String(appPid) : '' } });
        return `ran ${options.healCommand}: ${`${stdout}${stderr}`.trim().slice(0, 300) || 'exit 0'}`;
      },
    };
  }
  if (options.appUnit) {
    return {
      how: `sudo -n /usr/bin/systemctl restart ${options.appUnit}`,
      pid, logTail,
      restart: async () => {
        // A unit someone stopped (systemctl stop) is down on purpose: not ours to start.
        const { stdout: state } = await run('systemctl', ['is-active', options.appUnit], { timeout: 3000 }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
        if (state.trim() === 'inactive') throw new Error(`${options.appUnit} is inactive (stopped on purpose): not restarted`);
        // -n: never ask for a password; the sudoers rule in deploy/ allows exactly this.
        await run('sudo', ['-n', '/usr/bin/systemctl', 'restart', options.appUnit], { timeout: 90_000 });
        return `systemctl restart ${options.appUnit}`;
      },
    };
  }
  if (options.appPidFile) {
    return {
      how: `SIGKILL of the PID in ${options.appPidFile} (whatever started the app starts it again)`,
      pid, logTail,
      restart: async () => {
        const appPid = await pid();
        if (!appPid) throw new Error(`no PID in ${options.appPidFile}`);
        // SIGKILL: a stopped (SIGSTOP) process never acts on SIGTERM.
        process.kill(appPid, 'SIGKILL');
        return `SIGKILL to PID ${appPid}`;
      },
    };
  }
  return undefined;
}
