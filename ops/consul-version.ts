// Which Consul release a configuration is written for. The files sempre ships
// use only keys that kept their name from Consul 1.8 to today; the few that
// were renamed are written in the form the target release documents:
//   acl.tokens.master → acl.tokens.initial_management   (1.11)
//     https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/acl
//   top-level ca_file, cert_file, key_file, verify_*  → the tls { … } stanza   (1.12)
//     https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls
// Current releases still accept the old names with a deprecation warning
// (agent/config/deprecated.go); 1.8 refuses the new ones as unknown keys.
import { execFileSync } from 'node:child_process';

/** The release line the runbook installs from HashiCorp's apt repository. */
export const CURRENT_CONSUL = '2.0';

export interface ConsulDialect {
  version: string;
  /** Key of the initial management token under acl.tokens. */
  initialManagementKey: 'master' | 'initial_management';
  /** TLS settings in the `tls { defaults, internal_rpc }` stanza rather than at the top level. */
  tlsStanza: boolean;
}

export class ConsulVersionError extends Error {}

function parts(version: string): [number, number] {
  const match = /^v?(\d+)\.(\d+)(?:\.\d+)?/.exec(version.trim());
  if (!match) throw new ConsulVersionError(`consul.version: expected a release like 1.8.7 or ${CURRENT_CONSUL} (got ${JSON.stringify(version)})`);
  return [Number(match[1]), Number(match[2])];
}

const atLeast = ([major, minor]: [number, number], wantMajor: number, wantMinor: number) => major > wantMajor || (major === wantMajor && minor >= wantMinor);

export function consulDialect(version: string): ConsulDialect {
  const v = parts(version);
  if (!atLeast(v, 1, 8)) throw new ConsulVersionError(`consul.version: sempre needs Consul 1.8 or newer (got ${version})`);
  return {
    version: version.trim().replace(/^v/, ''),
    initialManagementKey: atLeast(v, 1, 11) ? 'initial_management' : 'master',
    tlsStanza: atLeast(v, 1, 12),
  };
}

/** The version a Consul binary reports (`consul version`: "Consul v1.8.7"). */
export function installedConsulVersion(binary: string): string {
  const out = execFileSync(binary, ['version'], { encoding: 'utf8' });
  const match = /Consul v(\d+\.\d+\.\d+)/.exec(out);
  if (!match) throw new ConsulVersionError(`${binary} version printed no version: ${out.trim().split('\n')[0]}`);
  return match[1]!;
}
