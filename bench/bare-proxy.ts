// The reference for "Where the remaining time goes" (BENCHMARKS.md): the
// least a Node proxy on undici can do — Node's HTTP server, a Pool per
// instance, raw headers, round robin, no log, health, retries or counters.
// Not part of sempre: the per-core bench runs it as `node-floor-1core`, and
// by hand it measures the floor on a machine:
//   node_modules/.bin/node bench/bare-proxy.ts 18300 http://127.0.0.11:18020 http://127.0.0.12:18020
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { Dispatcher, Pool as PoolType } from 'undici';

const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType;
const [listen = '', ...origins] = process.argv.slice(2);
// [HOST:]PORT, loopback unless a host is given.
const [, host = '127.0.0.1', port = ''] = /^(?:(.+):)?(\d+)$/.exec(listen) ?? [];
if (!port || origins.length === 0) {
  process.stderr.write('usage: node bench/bare-proxy.ts [HOST:]PORT ORIGIN [ORIGIN ...]\n');
  process.exit(2);
}
const pools = origins.map((origin) => new Pool(origin));
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);
let next = 0;

const server = createServer((req, res) => {
  const pool = pools[(next += 1) % pools.length]!;
  const headers: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (!HOP.has(req.rawHeaders[i]!.toLowerCase())) headers.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  }
  const handler = {
    onConnect() {},
    onError() {
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end();
    },
    onHeaders(status: number, raw: Buffer[], _resume: () => void, text: string) {
      const out: string[] = [];
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toString('latin1');
        if (!HOP.has(name.toLowerCase())) out.push(name, raw[i + 1]!.toString('latin1'));
      }
      res.writeHead(status, text, out);
      return true;
    },
    onData: (chunk: Buffer) => res.write(chunk),
    onComplete: () => res.end(),
  };
  pool.dispatch({ path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body: null }, handler as unknown as Dispatcher.DispatchHandler);
});
process.on('SIGTERM', () => process.exit(0)); // exits normally, so --cpu-prof writes its profile
server.listen(Number(port), host);
