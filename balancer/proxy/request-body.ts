// Keeps a request body so the request can be sent again to another instance.
// Bodies larger than the limit are streamed once and cannot be retried.
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';

export type RequestBody =
  | { replayable: true; bytes: Buffer }
  | { replayable: false; stream: Readable };

const EMPTY = Buffer.alloc(0);

export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

export async function readRequestBody(req: IncomingMessage, maxBytes: number): Promise<RequestBody> {
  if (!hasBody(req)) return { replayable: true, bytes: EMPTY };
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return { replayable: false, stream: req };
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size <= maxBytes) return;
      // Too large after all (a chunked upload): stream what we have, then the rest.
      req.off('data', onData).off('end', onEnd).off('error', reject);
      const rest = new PassThrough();
      for (const kept of chunks) rest.write(kept);
      req.pipe(rest);
      resolve({ replayable: false, stream: rest });
    };
    const onEnd = () => resolve({ replayable: true, bytes: Buffer.concat(chunks, size) });
    req.on('data', onData).once('end', onEnd).once('error', reject);
  });
}
