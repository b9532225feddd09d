// The lab runs Consul the way the servers do: `consul agent -config-dir=DIR`
// with the very files deploy/ ships (cluster.hcl, the host's consul.hcl) and
// the secrets.hcl, tls.hcl and certificates that `sempre secrets` writes.
// Only what must differ in a lab is rewritten: addresses, data directory, the
// join list, server or client for hosts beyond the three servers, and where
// the certificates are.
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { consulTlsHcl, TLS_FILES } from '../ops/consul-tls.ts';
import { consulSecretsHcl, dialectOf, type ClusterSecrets } from '../ops/secrets.ts';
import { PROJECT_ROOT } from './consul-binary.ts';

const DEPLOY = join(PROJECT_ROOT, 'deploy');

export interface LabConsulHost {
  name: string;
  address: string;
  server: boolean;
  /** How many servers the cluster waits for before electing a leader. */
  bootstrapExpect: number;
  /** The servers' addresses: retry_join. */
  join: readonly string[];
  /** Addresses the HTTP API listens on besides the host's loopback. */
  extraClientAddresses?: readonly string[];
  dataDir: string;
}

function replaceSetting(text: string, pattern: RegExp, replacement: string): string {
  if (!pattern.test(text)) throw new Error(`deploy/consul/cluster.hcl no longer matches ${pattern}: update lab/consul-config.ts`);
  return text.replace(pattern, replacement);
}

/** cluster.hcl as this lab host reads it. */
export function labClusterHcl(host: LabConsulHost): string {
  let text = readFileSync(join(DEPLOY, 'consul', 'cluster.hcl'), 'utf8');
  text = replaceSetting(text, /^data_dir\s*=.*$/m, `data_dir         = "${host.dataDir}"`);
  text = replaceSetting(text, /^bind_addr\s*=.*$/m, `bind_addr        = "${host.address}"`);
  text = replaceSetting(text, /^client_addr\s*=.*$/m, `client_addr      = "${['127.0.0.1', ...(host.extraClientAddresses ?? [])].join(' ')}"`);
  text = replaceSetting(text, /^retry_join = \[[^\]]*\]/m, `retry_join = [${host.join.map((a) => `"${a}"`).join(', ')}]`);
  text = replaceSetting(text, /^server\s*=.*$/m, `server           = ${host.server}`);
  text = replaceSetting(text, /^bootstrap_expect\s*=.*$/m, host.server ? `bootstrap_expect = ${host.bootstrapExpect}` : '');
  return `# Written by the lab from deploy/consul/cluster.hcl.\n${text}`;
}

/** The host's own consul.hcl: deploy/hosts/<name>/consul.hcl where it exists. */
function hostHcl(name: string): string {
  try {
    return readFileSync(join(DEPLOY, 'hosts', name, 'consul.hcl'), 'utf8');
  } catch {
    return `node_name = "${name}"\n`;
  }
}

/** Writes the host's Consul config directory, with the host's certificates from `tlsDir`, and returns it. */
export function writeLabConsulConfig(dir: string, host: LabConsulHost, secrets: ClusterSecrets, tlsDir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(host.dataDir, { recursive: true });
  writeFileSync(join(dir, 'cluster.hcl'), labClusterHcl(host));
  writeFileSync(join(dir, 'consul.hcl'), hostHcl(host.name));
  writeFileSync(join(dir, 'secrets.hcl'), consulSecretsHcl(secrets, host.name), { mode: 0o600 });
  cpSync(tlsDir, join(dir, 'tls'), { recursive: true });
  chmodSync(join(dir, 'tls', TLS_FILES.key), 0o600);
  writeFileSync(join(dir, 'tls.hcl'), consulTlsHcl(dialectOf(secrets), host.name, join(dir, 'tls')));
  // Lab only: quieter logs, no gRPC (nothing uses it here).
  writeFileSync(join(dir, 'lab.hcl'), 'log_level = "warn"\nports {\n  grpc = -1\n}\n');
  return dir;
}
