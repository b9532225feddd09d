// WebSockets through the balancer to test/apps/real-app.ts's /ws (it greets
// with its instance's name and echoes what it is sent).
import WebSocket from 'ws';

export interface Tunnel {
  ws: WebSocket;
  instance: string;
  /** Wall time the socket closed, once it has. */
  closedAt: number | undefined;
  closed: Promise<number>;
}

/** A WebSocket to `url` (test/apps/real-app.ts's /ws), resolved once the app has named itself; kept in `sockets` until it closes. */
export function openTunnel(url: string, sockets: Set<WebSocket>, options: { cookie?: string; localAddress?: string } = {}): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: options.cookie ? { cookie: options.cookie } : {}, localAddress: options.localAddress, handshakeTimeout: 5000 });
    sockets.add(ws);
    let greeted = false;
    const tunnel: Tunnel = {
      ws,
      instance: '',
      closedAt: undefined,
      closed: new Promise((done) => ws.once('close', () => {
        tunnel.closedAt = Date.now();
        sockets.delete(ws);
        done(tunnel.closedAt);
        if (!greeted) reject(new Error('the WebSocket closed before the app greeted it'));
      })),
    };
    ws.on('error', (error) => { if (!greeted) reject(error); });
    ws.once('unexpected-response', (request, response) => {
      request.destroy();
      reject(new Error(`the upgrade got HTTP ${response.statusCode} instead of 101`));
    });
    ws.once('message', (data) => {
      greeted = true;
      tunnel.instance = String((JSON.parse(String(data)) as { instance: unknown }).instance);
      resolve(tunnel);
    });
  });
}

/** Opens `count` tunnels, `batch` at a time, spread over local addresses (the balancer caps connections per client address). */
export async function openTunnels(url: string, sockets: Set<WebSocket>, count: number, options: { batch?: number; perAddress?: number; addressPrefix?: string } = {}): Promise<Tunnel[]> {
  const tunnels: Tunnel[] = [];
  const batch = options.batch ?? 25;
  const perAddress = options.perAddress ?? 100;
  for (let i = 0; i < count; i += batch) {
    const size = Math.min(batch, count - i);
    tunnels.push(...await Promise.all(Array.from({ length: size }, (_, j) => openTunnel(url, sockets, { localAddress: `${options.addressPrefix ?? '127.0.2'}.${1 + Math.floor((i + j) / perAddress)}` }))));
  }
  return tunnels;
}

/** Sends `text` and resolves when it comes back, or rejects after `timeoutMs`. */
export function echo(tunnel: Tunnel, text: string, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      tunnel.ws.off('message', onMessage);
      reject(new Error(`no echo of ${text} from ${tunnel.instance} within ${timeoutMs} ms (readyState ${tunnel.ws.readyState})`));
    }, timeoutMs);
    const onMessage = (data: WebSocket.RawData) => {
      if (String(data) !== text) return;
      clearTimeout(timer);
      tunnel.ws.off('message', onMessage);
      resolve();
    };
    tunnel.ws.on('message', onMessage);
    tunnel.ws.send(text);
  });
}

export async function closeTunnels(tunnels: readonly Tunnel[]): Promise<void> {
  for (const t of tunnels) t.ws.close();
  await Promise.race([Promise.all(tunnels.map((t) => t.closed)), new Promise((resolve) => setTimeout(resolve, 3000))]);
  for (const t of tunnels) t.ws.terminate();
}

