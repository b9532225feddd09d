// Preloaded (node --import) into a command under test: every listen() the
// process makes is written to stderr as it happens, so a test can tell "never
// bound a port" from "bound one and released it before exiting" (a port
// checked after the exit looks refused in both cases). The balancer's main
// process binds its sockets without listen() (balancer/lifecycle/held-sockets.ts,
// through net's _createServerHandle): that is reported too.
import net, { Server } from 'node:net';

const report = (args: unknown[]) => process.stderr.write(`sempre-test: listen ${JSON.stringify(args.filter((a) => typeof a !== 'function'))}\n`);

const listen = Server.prototype.listen;
Server.prototype.listen = function (this: Server, ...args: unknown[]) {
  report(args);
  return (listen as (...a: unknown[]) => Server).apply(this, args);
} as Server['listen'];

const internals = net as unknown as { _createServerHandle: (...args: unknown[]) => unknown };
const createServerHandle = internals._createServerHandle;
internals._createServerHandle = (...args: unknown[]) => {
  report(args.slice(0, 2));
  return createServerHandle(...args);
};
