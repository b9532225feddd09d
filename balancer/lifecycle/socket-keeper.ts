// bin/sempre-socket-keeper: what systemd's sempre-balancer.socket unit and
// Restart=always do, for places without systemd (the local stack, the lab,
// a container). It binds the listening sockets once, starts the balancer
// with them (systemd's socket-activation protocol: LISTEN_FDS from fd 3,
// named by LISTEN_FDNAMES) and starts it again whenever it exits. The
// sockets outlive the balancer: while it restarts, even after kill -9,
// connections wait in the kernel's queue instead of being refused.
import { spawn, type ChildProcess } from 'node:child_process';
import { runCommand } from '../../shared/command.ts';
import type { CommandSpec } from '../../shared/config/options.ts';
import { duration, text } from '../../shared/config/values.ts';
import { loggingOptions } from '../../shared/config/logging-options.ts';
import { boundedStdout, restoreNonBlockingStdout } from '../../shared/log-output.ts';
import { createLogger, type Logger } from '../../shared/logger.ts';
import { bindHeldSocket, type HeldSocket } from './held-sockets.ts';

const options = {
  listen: { flag: 'listen', env: 'SEMPRE_KEEPER_LISTEN', placeholder: 'NAME=HOST:PORT,…', default: 'public=0.0.0.0:8080,admin=127.0.0.1:8081', description: 'the sockets to hold and pass, in this order (names: public, admin)', schema: text(1000) },
  restartDelay: { flag: 'restart-delay', env: 'SEMPRE_KEEPER_RESTART_DELAY', placeholder: 'DURATION', default: '100ms', description: 'wait this long before starting the command again after it exits', schema: duration(0, 60_000) },
  ...loggingOptions,
};

const keeperCommand: CommandSpec<typeof options> = {
  command: 'sempre-socket-keeper',
  section: 'keeper',
  summary: 'holds the balancer\'s listening sockets and starts it again when it exits (systemd socket activation and Restart=always, without systemd)',
  options,
  examples: [
    'bin/sempre-socket-keeper -- bin/sempre-balancer --service web',
    'bin/sempre-socket-keeper --listen public=127.0.0.1:8080,admin=127.0.0.1:8081 -- bin/sempre-balancer --run-dir /tmp/sb',
    'kill -HUP <keeper pid>        # passed on: reloads the balancer',
  ],
  notes: ['Everything after -- is the command. SIGHUP, SIGTERM and SIGINT are passed on to it; after SIGTERM or SIGINT the', 'keeper exits with it instead of starting it again.'],
};

interface Listen { name: string; host: string; port: number }

export function parseListen(value: string): Listen[] {
  return value.split(',').map((item) => {
    const match = /^(public|admin)=(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(item.trim());
    if (!match || Number(match[3]) < 1 || Number(match[3]) > 65535) throw new Error(`keeper.listen: "${item}" is not NAME=HOST:PORT with NAME public or admin`);
    return { name: match[1]!, host: match[2]!.replace(/^\[|\]$/g, ''), port: Number(match[3]) };
  });
}

const separator = process.argv.indexOf('--');
const command = separator < 0 ? [] : process.argv.slice(separator + 1);

await runCommand(keeperCommand, async (o) => {
  const logger = createLogger({ name: 'sempre-socket-keeper', level: o.logLevel, format: o.logFormat, output: boundedStdout(o.logBuffer) });
  if (command.length === 0) {
    process.stderr.write('sempre-socket-keeper: no command: put it after --\n');
    return 2;
  }
  let sockets: HeldSocket[];
  try {
    const listens = parseListen(o.listen);
    sockets = listens.map((l) => bindHeldSocket(l.host, l.port));
    logger.info({ sockets: listens.map((l) => `${l.name}=${l.host}:${l.port}`) }, 'holding the listening sockets');
    return await keep(command, listens.map((l) => l.name), sockets, o.restartDelay, logger);
  } catch (error) {
    process.stderr.write(`sempre-socket-keeper: ${(error as Error).message}\n`);
    return 2;
  }
}, separator < 0 ? process.argv.slice(2) : process.argv.slice(2, separator));

async function keep(argv: string[], names: string[], sockets: HeldSocket[], restartDelay: number, logger: Logger): Promise<number> {
  let child: ChildProcess | undefined;
  let stopping = false;
  let starts = 0;
  const start = () => {
    starts += 1;
    const env: NodeJS.ProcessEnv = { ...process.env, LISTEN_FDS: String(sockets.length), LISTEN_FDNAMES: names.join(':') };
    delete env.LISTEN_PID; // unknown before the spawn; the balancer takes the fds without it
    child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['inherit', 'inherit', 'inherit', ...sockets.map((s) => s.fd)] });
    restoreNonBlockingStdout();
    logger.info({ pid: child.pid, start: starts }, starts === 1 ? 'started' : 'started again');
  };
  return new Promise<number>((resolve) => {
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      restoreNonBlockingStdout();
      if (stopping) return resolve(code ?? 1);
      logger.error({ code, signal, restartInMs: restartDelay }, 'the command exited; starting it again (the sockets stay open: new connections wait)');
      setTimeout(() => {
        if (stopping) return resolve(0);
        start();
        child!.on('exit', onExit);
      }, restartDelay);
    };
    start();
    child!.on('exit', onExit);
    for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        if (signal !== 'SIGHUP') stopping = true;
        if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
        else if (stopping) resolve(0);
      });
    }
  });
}
