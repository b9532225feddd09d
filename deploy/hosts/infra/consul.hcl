# /etc/consul.d/consul.hcl on infra, beside cluster.hcl (deploy/consul/).
node_name = "infra"
ui        = true
