#!/bin/sh
# Fills Node's compile cache (node_modules/.cache/sempre) with the balancer's,
# the agent's and the demo app's modules, so that even their first start finds
# the TypeScript already stripped and never loads Node's type stripper (about
# 27 MB of RSS a process keeps for its whole life). `--help` imports every
# module and exits. Run by npm ci (package.json "prepare") and the Dockerfile;
# it never fails an install: a cold cache only costs memory, and the first
# real start fills it anyway.
root="$(readlink -f "$(dirname "$(readlink -f "$0")")/..")"
for command in sempre-balancer sempre-agent sempre-demo-app; do
  "$root/bin/$command" --help >/dev/null 2>&1 || true
done
# The balancer's worker modules: its main process (what --help runs) imports
# them only when it starts a worker. Without this, the first worker after an
# install stripped them itself and kept the type stripper: 127 MB of RSS at
# start instead of 94 MB, measured.
NODE_COMPILE_CACHE="${NODE_COMPILE_CACHE:-$root/node_modules/.cache/sempre}" "$root/node_modules/.bin/node" --input-type=module \
  -e "await Promise.all(['balancer/balancer.ts', 'shared/consul-client.ts'].map((module) => import('$root/' + module)))" >/dev/null 2>&1 || true
