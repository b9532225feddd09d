// Every app host's sempre-agent loses its Consul ACL token at once, as when a
// token is revoked or rotated by mistake: Consul refuses the agents' check
// updates (403 "ACL not found") and each host's Consul agent expires their TTL
// checks. Note what Consul does with that: a host's agent syncs a check to
// the catalog with the token the check was registered with, and when that
// token is refused it skips the sync ("Check registration blocked by ACLs"),
// so the catalog (and the balancer, and Consul's DNS) keep the last status it
// had. The revert creates the tokens again with the same accessor and secret
// IDs, as `./sempre secrets apply` does, and waits until every agent's check
// passes again on its own host. The target is ignored.
import { localCheck } from '../../lab/consul-health.ts';
import { appHosts, type LabState } from '../../lab/netns-lab.ts';
import { waitFor } from '../../lab/processes.ts';
import { ttlCheckId } from '../../agent/registration.ts';
import { applyAcls, consulCall, readSecrets, type ClusterSecrets } from '../../ops/secrets.ts';
import type { Fault } from './fault.ts';

/** Client agents (app3 and later) may hold a token's answer for acl.token_ttl (30 s): the restore waits beyond it. */
const RESTORE_TIMEOUT_MS = 45_000;

function labSecrets(lab: LabState): ClusterSecrets {
  const secrets = readSecrets(lab.secretsDir);
  if (!secrets) throw new Error(`the lab's secrets are missing from ${lab.secretsDir}: \`sudo ./sempre lab down\` and up again`);
  return secrets;
}

/** Creates the tokens again (all of them, with their IDs; the others are left as they are) and waits until every agent passes on its host. */
async function restore(lab: LabState, secrets: ClusterSecrets, hosts: readonly string[], say: (message: string) => void): Promise<void> {
  const started = Date.now();
  await waitFor("Consul to take the agents' tokens back (sempre secrets apply)", () => applyAcls(lab.consulUrl, secrets).then(() => true), RESTORE_TIMEOUT_MS, 500);
  await waitFor(`every agent's check passing again on its own host (${hosts.join(', ')})`, () => hosts.every((host) => localCheck(lab, host, ttlCheckId(host))?.status === 'passing'), RESTORE_TIMEOUT_MS, 250);
  say(`tokens created again; every agent's check passing on its own host ${Date.now() - started} ms later`);
}

export const agentsTokensRevoked: Fault = {
  name: 'agents-tokens-revoked',
  summary: "delete every app host's agent ACL token (the target is ignored): Consul refuses their check updates; each host's Consul expires their TTL check but may not sync it, so the catalog keeps their last status; created again with the same IDs (as `sempre secrets apply` does) when the fault ends",
  async inject({ lab, say }) {
    const secrets = labSecrets(lab);
    const hosts = appHosts(lab).filter((host) => secrets.hosts[host]?.sempreAgent);
    if (hosts.length === 0) throw new Error('no app host of the lab has an agent token');
    try {
      for (const host of hosts) {
        const answer = await consulCall(lab.consulUrl, secrets.management.secretId, 'DELETE', `/v1/acl/token/${secrets.hosts[host]!.sempreAgent!.accessorId}`);
        if (answer.status !== 200) throw new Error(`Consul refused to delete ${host}'s agent token: HTTP ${answer.status}: ${answer.text.trim()}`);
      }
    } catch (error) {
      // Some may be gone already: put them back before saying the fault failed.
      await restore(lab, secrets, hosts, say);
      throw error;
    }
    say(`revoked the Consul ACL tokens of ${hosts.map((host) => `${host}-agent`).join(', ')}`);
    return () => restore(lab, secrets, hosts, say);
  },
};
