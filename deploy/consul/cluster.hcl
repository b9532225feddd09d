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
acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
}
# The gossip key (encrypt = "…") and tokens go in /etc/consul.d/secrets.hcl,
# generated on the machine, never committed.
