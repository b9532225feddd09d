// The figures the bench reads from `wrk --latency` output.

export interface WrkFigures {
  rps: number;
  /** Latency percentiles, ms. */
  p50: number;
  p99: number;
  requests: number;
  /**
   * Answers wrk counted in req/s that were not a 2xx or 3xx ("Non-2xx or 3xx
   * responses"), and its socket errors (connect, read, write, timeout): a
   * figure built on either is not the proxy's throughput.
   */
  wrongAnswers: number;
  socketErrors: number;
}

/** wrk prints latencies as 812.00us, 3.41ms or 1.02s. */
function toMs(text: string | undefined): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text ?? '');
  // Rounded to the microsecond wrk prints, without the float's tail (702.00us is 0.702 ms, not 0.7020000000000001).
  return m ? Math.round(Number(m[1]) * (m[2] === 'us' ? 1 : m[2] === 's' ? 1e6 : 1000)) / 1000 : NaN;
}

export function parseWrk(stdout: string): WrkFigures {
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN),
    p50: toMs(/\n\s+50%\s+(\S+)/.exec(stdout)?.[1]),
    p99: toMs(/\n\s+99%\s+(\S+)/.exec(stdout)?.[1]),
    requests: Number(/(\d+) requests in/.exec(stdout)?.[1] ?? NaN),
    // wrk prints these two lines only when the count is not zero.
    wrongAnswers: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0),
    socketErrors: [...(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout) ?? [])].slice(1).reduce((sum, n) => sum + Number(n), 0),
  };
}
