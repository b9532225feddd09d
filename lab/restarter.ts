// The lab's stand-in for systemd's Restart=always (deploy/'s app unit): runs
// the app as its child, keeps the app's PID in --pid-file (what the agent's
// --app-pid-file reads: its heal SIGKILLs that PID) and starts the app again
// when it exits, unless --hold-file exists: a drill fault that takes the app
// down on purpose (crash, stop, scale-in, a host crash) holds it for its
// window, as `systemctl stop` would, and its revert removes the file. SIGTERM
// or SIGINT stops the app (SIGCONT first: it may be stopped) and then itself,
// as `systemctl stop` does. Run inside the host's namespace; logs to its
// stdout, which is the app's log too (as the journal would have both).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** systemd's RestartSec default; an app that dies within START_LIMIT_MS of starting waits longer. */
const RESTART_DELAY_MS = 100;
const QUICK_EXIT_DELAY_MS = 1000;
const START_LIMIT_MS = 2000;
const HOLD_POLL_MS = 100;
const STOP_GRACE_MS = 10_000;

const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'pid-file': { type: 'string' }, 'hold-file': { type: 'string' } } });
const pidFile = values['pid-file'];
const holdFile = values['hold-file'];
const [command, ...args] = positionals;
if (!pidFile || !holdFile || !command) {
  process.stderr.write('usage: restarter.ts --pid-file FILE --hold-file FILE -- COMMAND [ARG…]\n');
  process.exit(2);
}

const say = (message: string) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), name: 'lab-restarter', msg: message })}\n`);
let child: ChildProcess | undefined;
let stopping = false;
let held = false;

function start(): void {
  const startedAt = Date.now();
  const app = spawn(command!, args, { stdio: 'inherit' });
  child = app;
  // Written whole, then renamed: the agent never reads half a PID.
  writeFileSync(`${pidFile}.tmp`, `${app.pid}\n`);
  renameSync(`${pidFile}.tmp`, pidFile!);
  app.once('error', (error) => {
    say(`could not start the app: ${error.message}`);
    process.exit(1);
  });
  app.once('exit', (code, signal) => {
    child = undefined;
    if (stopping) process.exit(0);
    say(`the app (pid ${app.pid}) exited (code ${code ?? '-'}, signal ${signal ?? '-'}): starting it again`);
    setTimeout(startUnlessHeld, Date.now() - startedAt < START_LIMIT_MS ? QUICK_EXIT_DELAY_MS : RESTART_DELAY_MS);
  });
}

function startUnlessHeld(): void {
  if (stopping) process.exit(0);
  if (existsSync(holdFile!)) {
    if (!held) say(`held by ${holdFile}: the app stays down until it is removed`);
    held = true;
    setTimeout(startUnlessHeld, HOLD_POLL_MS);
    return;
  }
  held = false;
  start();
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    stopping = true;
    if (!child) process.exit(0);
    child.kill('SIGCONT');
    child.kill(signal);
    setTimeout(() => child?.kill('SIGKILL'), STOP_GRACE_MS).unref();
  });
}

start();
