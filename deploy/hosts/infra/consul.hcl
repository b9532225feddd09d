# /etc/consul.d/consul.hcl on infra, beside cluster.hcl (deploy/consul/).
node_name = "infra"
# Consul's web UI is off. To see it (on this host's loopback, through an SSH
# tunnel), add `ui_config { enabled = true }` (Consul 1.9 and later; `ui = true`
# before): https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/ui
