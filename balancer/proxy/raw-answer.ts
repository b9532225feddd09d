// An HTTP answer written straight to a socket that has no response object:
// a request head Node's parser refused, an upgrade no instance could take.
import type { Duplex } from 'node:stream';

export function rawAnswer(socket: Duplex, status: number, text: string, detail = '', headers: Record<string, string> = {}): void {
  const body = `${status} ${text}${detail ? `: ${detail}` : ''}\n`;
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`);
}
