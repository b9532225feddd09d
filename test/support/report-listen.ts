// Preloaded (node --import) into a command under test: every listen() the
// process makes is written to stderr as it happens, so a test can tell "never
// bound a port" from "bound one and released it before exiting" (a port
// checked after the exit looks refused in both cases).
import { Server } from 'node:net';

const listen = Server.prototype.listen;
Server.prototype.listen = function (this: Server, ...args: unknown[]) {
  process.stderr.write(`sempre-test: listen ${JSON.stringify(args.filter((a) => typeof a !== 'function'))}\n`);
  return (listen as (...a: unknown[]) => Server).apply(this, args);
} as Server['listen'];
