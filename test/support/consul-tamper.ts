// A fault in front of the real Consul (toxiproxy-style): it forwards every
// request to Consul unchanged until told to answer garbage instead, so a test
// can show what the balancer does with a malformed Consul. Loopback only.
import { createServer, request, type Server } from 'node:http';

export type TamperMode = 'pass' | 'garbage' | 'html-500' | 'no-index';

export interface ConsulTamper {
  url: string;
  setMode(mode: TamperMode): void;
  close(): Promise<void>;
}

export async function startConsulTamper(consulPort: number, listenPort: number): Promise<ConsulTamper> {
  let mode: TamperMode = 'pass';
  const server: Server = createServer((req, res) => {
    if (mode === 'garbage') return void res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '99' }).end('{"this is":"not a list"');
    if (mode === 'html-500') return void res.writeHead(500, { 'content-type': 'text/html' }).end('<html>upstream broke</html>');
    const upstream = request({ host: '127.0.0.1', port: consulPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      const headers = { ...answer.headers };
      if (mode === 'no-index') delete headers['x-consul-index'];
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${listenPort}`,
    setMode: (next) => { mode = next; },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
