// One GET with a chosen Host header (fetch does not let a caller set Host),
// for balancers that route by host name.
import { request } from 'node:http';

export interface HostAnswer {
  status: number;
  /** x-served-by: the instance that answered ('' when none did). */
  servedBy: string;
  /** x-app-path: the path the app saw (after any ;strip). */
  appPath: string;
  body: string;
}

/** GET http://address:port + path with this Host header; 5 s at most. */
export function getWithHost(address: string, port: number, host: string, path = '/'): Promise<HostAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, headers: { host }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; }).on('end', () => resolve({ status: res.statusCode ?? 0, servedBy: String(res.headers['x-served-by'] ?? ''), appPath: String(res.headers['x-app-path'] ?? ''), body }));
      // A connection cut mid-body ends the wait too.
      res.on('error', reject).on('aborted', () => reject(new Error(`GET ${path} (Host: ${host}) on ${address}:${port}: the response was cut`)));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} (Host: ${host}) on ${address}:${port}: no answer in 5 s`)));
    req.on('error', reject).end();
  });
}
