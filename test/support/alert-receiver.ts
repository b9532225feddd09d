// A webhook receiver for the balancer's alerts (--alert-webhook), listening on
// a free loopback port: every alert it gets, in order of arrival.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertPayload } from '../../balancer/observe/alerts.ts';

export interface AlertReceiver {
  /** Every alert received so far, oldest first. */
  readonly alerts: AlertPayload[];
  /** The --alert-webhook URL. */
  readonly url: string;
  close(): void;
}

export async function startAlertReceiver(): Promise<AlertReceiver> {
  const alerts: AlertPayload[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => { body += chunk.toString(); }).on('end', () => {
      alerts.push(JSON.parse(body) as AlertPayload);
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { alerts, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`, close: () => server.close() };
}
