# /etc/consul.d/consul.hcl on app1, beside cluster.hcl (deploy/consul/).
node_name = "app1"
