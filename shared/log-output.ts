// Where the JSON log lines go: standard output, through a buffer of bounded
// size. When the reader of stdout stops reading (a stuck journald, a log
// shipper behind a full disk, a pipe to a hung process), lines are dropped and
// counted instead of gathering in memory until the heap limit (issue 26).
// Warnings and errors may use the last eighth of the buffer, which access and
// info lines may not, so they outlive a burst of access lines. Lines are
// written in batches of whole lines, one write in flight at a time; once the
// reader has caught up, the caller is told how many lines were dropped.
import { fstatSync, readFileSync, write as fsWrite, writeSync } from 'node:fs';

export interface LogOutputStats {
  /** Lines dropped since the process started. */
  droppedLines: number;
  /** While lines are being dropped: since when stdout has taken nothing, and the lines dropped since. */
  blocked: { since: number; droppedLines: number } | null;
}

/** What one episode of dropping came to, once the reader caught up. */
export interface CaughtUp {
  droppedLines: number;
  blockedMs: number;
}

export interface LogSink {
  /** Writes some or all of `chunk`, then calls back with the bytes taken or an error (EAGAIN: full for now). */
  write(chunk: Buffer, done: (error: NodeJS.ErrnoException | null, written: number) => void): void;
  /** Writes what can be written now without waiting; the bytes taken (0 when full). Used at exit. */
  writeNow(chunk: Buffer): number;
}

export interface BoundedOutputOptions {
  /** Bytes of lines held at most, the write in flight included. */
  capacity: number;
  sink: LogSink;
  now?: () => number;
  /** Told once per episode of dropping, when the reader has caught up. */
  onCaughtUp?: (episode: CaughtUp) => void;
  /** A batch is written once this many bytes have gathered... */
  minBatch?: number;
  /** ...or every this many ms. */
  flushEveryMs?: number;
  /** Largest write, in whole lines. */
  maxWrite?: number;
  /** Wait before trying a write again that found stdout full. */
  retryMs?: number;
}

/** pino sets lastLevel (and more) on a destination that has this key. */
const PINO_METADATA: unique symbol = Symbol.for('pino.metadata') as never;
// pino's levels: warn is 40, error 50, fatal 60.
const WARN = 40;
/** The share of the buffer only warnings and errors may fill. */
const URGENT_SHARE = 1 / 8;
// Each write is whole lines and at most 4096 bytes (PIPE_BUF): with --workers
// the processes share one stdout, and a pipe keeps writes that small in one
// piece, so two workers' lines never interleave mid-line. A write once 3 KB
// have gathered (about 12 access lines) takes the per-call cost off the
// request path; 250 ms is the most a line waits when traffic is light.
const MIN_BATCH = 3072;
const MAX_WRITE = 4096;
// A regular file takes each write whole whatever its size (Linux holds the
// file's lock for the whole write, and the processes share one offset), so
// there the batches are larger: one write per about 230 access lines instead
// of 14 (each write cost about 0.7 µs per request at full rate).
const FILE_MIN_BATCH = 48 * 1024;
const FILE_MAX_WRITE = 64 * 1024;
const FLUSH_EVERY_MS = 250;
const RETRY_MS = 50;

/**
 * A pino destination (a `write(line)` object) with a bounded buffer. pino
 * sets `lastLevel` before each write because of the `pino.metadata` symbol.
 */
export class BoundedLogOutput {
  readonly [PINO_METADATA] = true;
  lastLevel = 30;
  private readonly capacity: number;
  private readonly urgentFrom: number;
  private readonly sink: LogSink;
  private readonly now: () => number;
  private readonly minBatch: number;
  private readonly maxWrite: number;
  private readonly retryMs: number;
  onCaughtUp: ((episode: CaughtUp) => void) | undefined;
  /** Batches of whole lines waiting, oldest first, with their sizes and line counts. */
  private readonly batches: string[] = [];
  private readonly batchBytes: number[] = [];
  private readonly batchLines: number[] = [];
  private queuedBytes = 0;
  /** The batch being written (what is left of it) and when its first try began. */
  private inFlight: Buffer | undefined;
  private inFlightLines = 0;
  private inFlightSince = 0;
  /** A sink call not yet answered (never written over at exit). */
  private calling = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly timer: NodeJS.Timeout;
  private dropped = 0;
  private blocked: { since: number; droppedLines: number } | null = null;
  /** Set when stdout failed for good (EPIPE: the reader is gone): every line is dropped. */
  private failed = false;

  constructor(options: BoundedOutputOptions) {
    this.capacity = options.capacity;
    this.urgentFrom = Math.floor(options.capacity * (1 - URGENT_SHARE));
    this.sink = options.sink;
    this.now = options.now ?? Date.now;
    this.onCaughtUp = options.onCaughtUp;
    this.minBatch = options.minBatch ?? MIN_BATCH;
    this.maxWrite = options.maxWrite ?? MAX_WRITE;
    this.retryMs = options.retryMs ?? RETRY_MS;
    this.timer = setInterval(() => this.writeNext(true), options.flushEveryMs ?? FLUSH_EVERY_MS);
    this.timer.unref();
  }

  write(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    const limit = this.lastLevel >= WARN ? this.capacity : this.urgentFrom;
    if (this.failed || this.buffered() + bytes > limit) {
      this.drop(1);
      return false;
    }
    const last = this.batches.length - 1;
    if (last >= 0 && this.batchBytes[last]! + bytes <= this.maxWrite) {
      this.batches[last] = this.batches[last]! + line;
      this.batchBytes[last] = this.batchBytes[last]! + bytes;
      this.batchLines[last] = this.batchLines[last]! + 1;
    } else {
      this.batches.push(line);
      this.batchBytes.push(bytes);
      this.batchLines.push(1);
    }
    this.queuedBytes += bytes;
    if (this.queuedBytes >= this.minBatch) this.writeNext(false);
    return true;
  }

  /** pino's logger.flush(): writes what has gathered now. */
  flush(done?: (error?: Error) => void): void {
    this.writeNext(true);
    done?.();
  }

  stats(): LogOutputStats {
    return { droppedLines: this.dropped, blocked: this.blocked && { ...this.blocked } };
  }

  /** Bytes held: waiting and in flight. */
  buffered(): number {
    return this.queuedBytes + (this.inFlight?.length ?? 0);
  }

  /**
   * At exit: writes what is held as far as stdout takes it without waiting.
   * Skipped while a write is under way, which would interleave.
   */
  flushAtExit(): void {
    clearInterval(this.timer);
    clearTimeout(this.retry);
    if (this.calling || this.failed) return;
    for (;;) {
      const chunk = this.inFlight ?? this.takeBatch();
      if (!chunk) return;
      const written = this.sink.writeNow(chunk);
      this.inFlight = chunk.subarray(written);
      if (this.inFlight.length > 0) return;
      this.inFlight = undefined;
    }
  }

  private drop(lines: number): void {
    this.dropped += lines;
    // Blocked since the write that has not finished began (or now, if none).
    this.blocked ??= { since: this.inFlight ? this.inFlightSince : this.now(), droppedLines: 0 };
    this.blocked.droppedLines += lines;
  }

  private takeBatch(): Buffer | undefined {
    const batch = this.batches.shift();
    if (batch === undefined) return undefined;
    this.queuedBytes -= this.batchBytes.shift()!;
    this.inFlightLines = this.batchLines.shift()!;
    return Buffer.from(batch);
  }

  /** Starts the next write unless one is under way; a partial batch only when `partial`. */
  private writeNext(partial: boolean): void {
    if (this.inFlight || this.failed || this.queuedBytes === 0 || (!partial && this.queuedBytes < this.minBatch)) return;
    this.inFlight = this.takeBatch();
    this.inFlightSince = this.now();
    this.attempt();
  }

  private attempt(): void {
    const chunk = this.inFlight!;
    this.calling = true;
    this.sink.write(chunk, (error, written) => {
      this.calling = false;
      if (error) {
        if (error.code === 'EAGAIN') {
          this.retry = setTimeout(() => this.attempt(), this.retryMs);
          this.retry.unref();
        } else {
          this.fail();
        }
        return;
      }
      this.inFlight = written < chunk.length ? chunk.subarray(written) : undefined;
      if (this.inFlight) return this.attempt();
      this.written();
    });
  }

  /** A batch is out: the next one, and the notice once the reader has caught up. */
  private written(): void {
    if (this.blocked && this.queuedBytes < this.minBatch) {
      const episode = { droppedLines: this.blocked.droppedLines, blockedMs: this.now() - this.blocked.since };
      this.blocked = null;
      this.onCaughtUp?.(episode);
    }
    this.writeNext(false);
  }

  /** stdout is gone for good: what is held is dropped, and every line after it. */
  private fail(): void {
    this.failed = true;
    const lines = this.batchLines.reduce((sum, n) => sum + n, this.inFlight ? this.inFlightLines : 0);
    this.batches.length = 0;
    this.batchBytes.length = 0;
    this.batchLines.length = 0;
    this.queuedBytes = 0;
    this.inFlight = undefined;
    if (lines > 0) this.drop(lines);
  }
}

/** Every process's figures together (--workers): totals added, the earliest block. */
export function combineLogOutput(all: readonly (LogOutputStats | undefined)[]): LogOutputStats {
  let droppedLines = 0;
  let since = Infinity;
  let blockedLines = 0;
  for (const stats of all) {
    if (!stats) continue;
    droppedLines += stats.droppedLines;
    if (!stats.blocked) continue;
    since = Math.min(since, stats.blocked.since);
    blockedLines += stats.blocked.droppedLines;
  }
  return { droppedLines, blocked: since === Infinity ? null : { since, droppedLines: blockedLines } };
}

/** O_NONBLOCK among a descriptor's file status flags (octal in /proc/PID/fdinfo). */
const O_NONBLOCK = 0o4000;

/**
 * Whether a write to `fd` would return EAGAIN rather than wait when the
 * reader is behind: its open file is in non-blocking mode, read from
 * /proc/self/fdinfo (Node has no fcntl). False when it cannot be read.
 */
export function isNonBlocking(fd: number): boolean {
  try {
    const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1];
    return flags !== undefined && (Number.parseInt(flags, 8) & O_NONBLOCK) !== 0;
  } catch {
    return false;
  }
}

/**
 * File descriptor 1 as a sink. Node opens a pipe or socket on fd 1 in
 * non-blocking mode when process.stdout is first touched (libuv's
 * uv_pipe_open; /proc/PID/fdinfo/1 flags 02000001 → 02004001, measured), so a
 * write to a full pipe fails at once with EAGAIN and is tried again later.
 *
 * Each batch is written synchronously, on the event loop, when that cannot
 * wait for the reader: fd 1 is a regular file (what Node's own process.stdout
 * does for one), or its flags say non-blocking right now. Going through
 * libuv's thread pool instead (fs.write) cost the balancer 8% of its CPU per
 * request at full rate (a hand-off to a pool thread and back for every
 * batch, on the same core). The flags are read again before each batch
 * because they belong to the open file, which other processes share: a
 * process starting a child that inherits stdout makes it blocking in the
 * child before exec, and Node puts back the mode it found at start when it
 * exits, until the balancer's main process restores it
 * (restoreNonBlockingStdout). While it is blocking, a batch goes through the
 * thread pool, so a stuck reader holds a pool thread, never the event loop.
 * Writing with fs rather than through process.stdout leaves nothing queued in
 * the stream that would keep the event loop alive when the reader is stuck at
 * shutdown.
 */
export function stdoutSink(fd = 1): LogSink & { regularFile: boolean } {
  void process.stdout;
  let regularFile = false;
  try {
    regularFile = fstatSync(fd).isFile();
  } catch {
    // Closed or unknown: every write goes through the thread pool and fails there.
  }
  return {
    regularFile,
    write: (chunk, done) => {
      if (!regularFile && !isNonBlocking(fd)) {
        fsWrite(fd, chunk, 0, chunk.length, null, (error, written) => done(error, written));
        return;
      }
      let written: number;
      try {
        written = writeSync(fd, chunk);
      } catch (error) {
        done(error as NodeJS.ErrnoException, 0);
        return;
      }
      done(null, written);
    },
    writeNow: (chunk) => {
      try {
        return writeSync(fd, chunk);
      } catch {
        return 0;
      }
    },
  };
}

/** The bounded output on standard output, flushed as far as it goes when the process exits. */
export function boundedStdout(capacity: number): BoundedLogOutput {
  const sink = stdoutSink();
  const output = new BoundedLogOutput({ capacity, sink, ...(sink.regularFile ? { minBatch: FILE_MIN_BATCH, maxWrite: FILE_MAX_WRITE } : {}) });
  process.once('exit', () => output.flushAtExit());
  return output;
}

/**
 * Puts standard output back in non-blocking mode after a child process that
 * shares it started or exited. The mode belongs to the open file, which a
 * child inherits: libuv makes fds 0–2 blocking in a child before exec, and
 * Node restores the mode it found at start when it exits, so the balancer's
 * main process (and the socket keeper) would otherwise write to a blocking
 * stdout from then on, and block in the write at exit while nobody reads
 * it (measured: SIGTERM never finished).
 */
export function restoreNonBlockingStdout(): void {
  (process.stdout as unknown as { _handle?: { setBlocking?: (blocking: boolean) => number } })._handle?.setBlocking?.(false);
}
