// The one place a Consul HTTP client is built, so both commands talk to
// Consul the same way (address, token, timeouts).
import Consul from 'consul';

export type ConsulClient = InstanceType<typeof Consul>;

export interface ConsulClientOptions {
  url: URL;
  token: string;
}

export function createConsulClient({ url, token }: ConsulClientOptions): ConsulClient {
  const secure = url.protocol === 'https:';
  return new Consul({
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || (secure ? 443 : 80)),
    secure,
    ...(token ? { defaults: { token } } : {}),
  });
}

/** Consul's errors carry the HTTP response; this pulls out what a log needs. */
export function describeConsulError(error: unknown): { message: string; statusCode?: number; code?: string } {
  const e = error as { message?: string; code?: string; response?: { statusCode?: number; body?: unknown } };
  const body = typeof e?.response?.body === 'string' ? e.response.body.trim().slice(0, 200) : undefined;
  return {
    message: body || e?.message || String(error),
    ...(e?.response?.statusCode ? { statusCode: e.response.statusCode } : {}),
    ...(e?.code ? { code: e.code } : {}),
  };
}
