// bin/sempre-balancer-reload: what `systemctl reload sempre-balancer` runs.
// Sends SIGHUP to the balancer's main process and waits for the outcome it
// writes to the run directory, so a reload that was refused (a bad option or
// certificate, broken code) fails the command with the reason, where a bare
// `kill -HUP` would always succeed.
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand } from '../shared/command.ts';
import type { CommandSpec } from '../shared/config/options.ts';
import { boolean, duration, port, text } from '../shared/config/values.ts';
import { readMainPid, readReloadOutcome, runDirFor, type ReloadOutcome } from './lifecycle/run-dir.ts';

const options = {
  runDir: { flag: 'run-dir', env: 'SEMPRE_RUN_DIR', placeholder: 'DIR', default: '', description: "the balancer's --run-dir; empty: $RUNTIME_DIRECTORY (systemd), else $TMPDIR/sempre-balancer-PORT", schema: text(4096) },
  port: { flag: 'port', env: 'SEMPRE_PORT', placeholder: 'PORT', default: '8080', description: "the balancer's public port (names the default run directory)", schema: port() },
  timeout: { flag: 'timeout', env: 'SEMPRE_RELOAD_TIMEOUT', placeholder: 'DURATION', default: '60s', description: 'give up waiting for the outcome after this long (exit 1)', schema: duration(1000, 600_000) },
  json: { flag: 'json', env: 'SEMPRE_RELOAD_JSON', switch: true, default: 'false', description: 'print the outcome as JSON', schema: boolean() },
};

const reloadCommand: CommandSpec<typeof options> = {
  command: 'sempre-balancer-reload',
  section: 'reload',
  summary: 'reloads a running balancer (new workers with the code and options on disk, no connection refused) and says whether it worked',
  options,
  examples: [
    'bin/sempre-balancer-reload                               # the balancer on port 8080 of this host',
    'bin/sempre-balancer-reload --run-dir /run/sempre-balancer --json',
    'sudo systemctl reload sempre-balancer                    # the same, through systemd (ExecReload)',
  ],
  notes: [
    'Exit status: 0 the new workers serve; 1 the reload was refused (the old workers still serve) or no',
    'answer came; 2 a bad option of this command.',
  ],
};

await runCommand(reloadCommand, async (o) => {
  const dir = runDirFor(o.runDir, o.port);
  const pid = readMainPid(dir);
  if (pid === undefined || !isRunning(pid)) {
    process.stderr.write(`sempre-balancer-reload: no running balancer main process in ${dir} (main.pid${pid === undefined ? ' missing' : ` names ${pid}, not running`}); give its --run-dir\n`);
    return 1;
  }
  const before = readReloadOutcome(dir);
  const startedAt = Date.now();
  process.kill(pid, 'SIGHUP');
  if (!o.json) process.stderr.write(`reloading the balancer (main process ${pid})…\n`);
  const isNew = (outcome: ReloadOutcome | undefined): outcome is ReloadOutcome => outcome !== undefined && outcome.pid === pid && (before?.pid !== pid || outcome.seq > before.seq);
  let outcome = readReloadOutcome(dir);
  while (!isNew(outcome)) {
    if (Date.now() - startedAt > o.timeout) {
      process.stderr.write(`sempre-balancer-reload: no outcome within ${o.timeout / 1000} s; see the balancer's log\n`);
      return 1;
    }
    if (!isRunning(pid)) {
      process.stderr.write(`sempre-balancer-reload: the main process ${pid} exited during the reload\n`);
      return 1;
    }
    await sleep(50);
    outcome = readReloadOutcome(dir);
  }
  if (o.json) process.stdout.write(`${JSON.stringify(outcome)}\n`);
  else process.stdout.write(outcome.ok ? `${outcome.reason} (${(outcome.durationMs / 1000).toFixed(1)} s)\n` : `reload refused, the running workers keep serving: ${outcome.reason}\n`);
  return outcome.ok ? 0 : 1;
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
