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
