# Sourced by the bin/ wrappers: sets $root (the repository) and $node (the
# project's Node 24 from node_modules: npm ci or ./sempre up puts it there,
# so a wrapper works as printed with an older system node), and points Node's
# compile cache at node_modules/.cache/sempre (filled by npm ci's "prepare"
# script): with the TypeScript already stripped there, Node never loads its
# type stripper, ~27 MB of RSS a process would keep for its whole life.
root="$(readlink -f "$(dirname "$(readlink -f "$0")")/..")"
node="$root/node_modules/.bin/node"
export NODE_COMPILE_CACHE="${NODE_COMPILE_CACHE:-$root/node_modules/.cache/sempre}"
if [ ! -x "$node" ]; then
  # No node_modules yet: the system node will do only if it runs .ts files (Node 22.18+).
  node=node
  if [ -z "$(node -p 'process.features.typescript || ""' 2>/dev/null)" ]; then
    echo "$(basename "$0"): needs Node 22.18 or newer, and the system node is $(node --version 2>/dev/null || echo 'not installed'): run npm ci in $root (./sempre up does it) to get the project's Node 24" >&2
    exit 1
  fi
fi
