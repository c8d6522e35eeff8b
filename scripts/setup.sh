#!/usr/bin/env bash
# One command from a fresh Debian machine to a first sandbox: install what is
# missing, build, and run `netjail demo` in a throwaway lab namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "netjail needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run it again with sudo" >&2
  exit 1
fi
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v setpriv >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
npm ci --no-audit --no-fund
npm run build
node dist/netjail.mjs demo
