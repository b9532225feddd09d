# /etc/consul.d/consul.hcl on app2, beside cluster.hcl (deploy/consul/).
node_name = "app2"
