# /etc/consul.d/cluster.hcl on every host: the settings all three Consul
# servers share. Each host's own consul.hcl adds its node name.
# All three hosts run a server: the catalog survives losing any one.
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
# The gossip key (encrypt = "…") and the tokens go in /etc/consul.d/secrets.hcl,
# written by `./sempre secrets init`, never committed.
