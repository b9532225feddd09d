// What Consul tells us about one running app instance, as both the agent
// (which registers it) and the balancer (which routes to it) see it.

/** Service meta key where the agent publishes the app's health path, so the
 * balancer can probe an instance it ejected without any configuration. */
export const HEALTH_PATH_META = 'sempre_health_path';

/** Service meta key with which an instance asks balancers for sticky sessions
 * (its app keeps sessions in memory): "true" or absent. */
export const STICKY_META = 'sempre_sticky';

export interface Instance {
  /** Consul service ID, unique per instance, e.g. "web-app1". */
  readonly id: string;
  readonly service: string;
  readonly node: string;
  readonly address: string;
  readonly port: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
}

export function instanceOrigin(instance: Pick<Instance, 'address' | 'port'>): string {
  const host = instance.address.includes(':') ? `[${instance.address}]` : instance.address;
  return `http://${host}:${instance.port}`;
}
