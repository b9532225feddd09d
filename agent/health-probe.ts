// Asks the app whether it is healthy. The result's output is what Consul
// shows as the check's output, so it must tell a person what went wrong.

/**
 * How a probe failed: no answer in time, connection refused or reset (what a
 * restart can fix: the app is hung or gone), an answer with an error status
 * (the app itself says it is unhealthy: a restart would not help), or else.
 */
export type ProbeFailure = 'timeout' | 'refused' | 'reset' | 'status' | 'other';

export interface ProbeResult {
  healthy: boolean;
  output: string;
  failure?: ProbeFailure;
}

export type HealthProbe = () => Promise<ProbeResult>;

export function httpHealthProbe(url: string, timeoutMs: number): HealthProbe {
  return async () => {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
      const body = (await response.text()).trim().slice(0, 200);
      const healthy = response.status >= 200 && response.status < 300;
      // No timing in the output: it stays the same while the app's answer does,
      // so Consul only writes it when something a person cares about changed.
      return { healthy, output: `GET ${url}: HTTP ${response.status}${body ? `: ${body}` : ''}`, ...(healthy ? {} : { failure: 'status' as const }) };
    } catch (error) {
      return { healthy: false, output: `GET ${url}: ${describeFetchError(error, timeoutMs)}`, failure: probeFailure(error) };
    }
  };
}

function probeFailure(error: unknown): ProbeFailure {
  const e = error as { name?: string; cause?: { code?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout';
  const code = e?.cause?.code ?? '';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'reset';
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') return 'timeout';
  return 'other';
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  return e?.cause?.code ? `${e.cause.code} (${e.cause.message ?? ''})`.replace(' ()', '') : e?.message ?? String(error);
}
