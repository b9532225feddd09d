import { connect, type Socket } from 'node:net';
import { LAB_ADDRESSES } from '../../lab/netns-lab.ts';
import { assertSafeTarget } from '../load-generator.ts';
import type { Fault } from './fault.ts';

const CONNECTIONS = 300;

export const slowloris: Fault = {
  name: 'slowloris',
  summary: `${CONNECTIONS} connections to the balancer from the operator's address, each sending one header line every 500 ms and never finishing (the target is ignored); closed when the fault ends`,
  async inject({ lab, say }) {
    const url = new URL(lab.vipUrl ?? lab.url);
    assertSafeTarget(url, LAB_ADDRESSES);
    const sockets: Socket[] = [];
    let cut = 0;
    for (let i = 0; i < CONNECTIONS; i += 1) {
      const socket = connect({ host: url.hostname, port: Number(url.port) });
      socket.on('error', () => undefined);
      socket.resume(); // read the balancer's 408, or its close is never seen
      socket.on('close', () => { cut += 1; });
      socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: sempre\r\n'));
      sockets.push(socket);
    }
    const drip = setInterval(() => { for (const s of sockets) if (!s.destroyed) s.write(`X-Slow: ${Date.now()}\r\n`); }, 500);
    return async () => {
      clearInterval(drip);
      say(`slowloris: ${cut} of ${CONNECTIONS} slow connections had been closed by the balancer`);
      for (const s of sockets) s.destroy();
    };
  },
};
