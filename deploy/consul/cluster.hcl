# /etc/consul.d/cluster.hcl on every host: the settings all three Consul
# servers share. Each host's own consul.hcl adds its node name; secrets.hcl
# and tls.hcl, written by `./sempre secrets init` for the Consul release the
# servers run, add the gossip key, the ACL tokens and TLS for RPC.
# Every key below has kept its name from Consul 1.8 to the current release
# (HashiCorp's reference: https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file,
# for 1.8: https://developer.hashicorp.com/consul/docs/v1.8.x/agent/options).
# All three hosts run a server: the catalog survives losing any one.
# datacenter: server certificates name it (server.sempre.consul).
datacenter       = "sempre"
server           = true
bootstrap_expect = 3
data_dir         = "/var/lib/consul"
bind_addr        = "{{ GetPrivateIP }}"
client_addr      = "127.0.0.1"
retry_join = [
  "ec2-13-58-186-167.us-east-2.compute.amazonaws.com",
  "ec2-18-221-178-11.us-east-2.compute.amazonaws.com",
  "ec2-18-221-59-75.us-east-2.compute.amazonaws.com",
]
# Check outputs reach the servers when they change, not up to 5 minutes later:
# the agents' outputs only change with the app's health answer (its version, an
# error), and deploys and the dashboard read them.
check_update_interval = "0s"
# HashiCorp's production advice: the fastest leader elections (the default, 5, suits tiny VMs).
performance {
  raft_multiplier = 1
}
# .../configuration-file/acl: acl.enabled, default_policy, enable_token_persistence.
acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
}
# Consul's ACLs name services, not instances: a token that may register "web"
# could deregister every host's "web" through the catalog API. Blocking the
# catalog write endpoints on every agent leaves only the agent endpoints, which
# touch the local agent's own services: a host's token is good on that host only.
http_config {
  block_endpoints = ["/v1/catalog/register", "/v1/catalog/deregister"]
}
# Never committed, written by `./sempre secrets init` (docs/runbook.md):
#   secrets.hcl  encrypt = "…" (gossip) and acl.tokens (master before 1.11,
#                initial_management since)
#   tls.hcl      RPC under TLS: incoming and outgoing verified against the
#                cluster's CA, server host names checked (top-level keys before
#                1.12, the tls { } stanza since), certificates in tls/
