#!/usr/bin/env bash
# Installs a real Consul into .tools/consul when none is on PATH.
# Debian 12 ships no consul package; Debian 11 (bullseye) ships consul 1.8.7,
# which runs on Debian 12. We fetch that .deb with a private apt state so the
# system's package sources are never changed, and unpack it with dpkg -x.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.tools/consul"

if [[ -x "$dest/usr/bin/consul" ]]; then
  echo "$dest/usr/bin/consul"; exit 0
fi
if command -v consul >/dev/null 2>&1; then
  command -v consul; exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
uris="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
uris="${uris:-http://deb.debian.org/debian}"
cat >"$work/bullseye.sources" <<SRC
Types: deb
URIs: $uris
Suites: bullseye
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
mkdir -p "$work/lists/partial" "$work/archives/partial"
apt_opts=(-o "Dir::Etc::sourcelist=$work/bullseye.sources" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::Archives=$work/archives" -o "APT::Sandbox::User=root")
echo "sempre: fetching consul from Debian bullseye (one-time, into .tools/consul)" >&2
apt-get "${apt_opts[@]}" -qq update >&2
(cd "$work" && apt-get "${apt_opts[@]}" -qq download consul >&2)
mkdir -p "$dest"
dpkg -x "$work"/consul_*.deb "$dest"
"$dest/usr/bin/consul" version >&2
echo "$dest/usr/bin/consul"
