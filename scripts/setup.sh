#!/usr/bin/env bash
# Installs what baton needs on a fresh Debian machine (as root): system tools and npm packages.
# Idempotent and quiet when everything is already there. --bench also installs the benchmark baselines; --bgp
# installs BIRD 2 for labs with several front-ends (`baton lab up --frontends N`); --test installs what the browser
# tests use (chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=0; bench=0; bgp=0; tests=0
for a in "$@"; do
  case "$a" in
    --quiet) quiet=1 ;;
    --bench) bench=1 ;;
    --bgp) bgp=1 ;;
    --test) tests=1 ;;
    *) echo "setup: unknown option $a" >&2; exit 2 ;;
  esac
done
say() { [ "$quiet" = 1 ] || echo "setup: $*"; }

need=()
command -v nft  >/dev/null 2>&1 || need+=(nftables)
command -v ip   >/dev/null 2>&1 || need+=(iproute2)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# eBPF steering: libbpf1 loads the programs; clang/llvm/libbpf-dev build them from bpf/*.c
ldconfig -p 2>/dev/null | grep -q 'libbpf\.so\.1 ' || need+=(libbpf1)
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v llvm-strip >/dev/null 2>&1 || need+=(llvm)
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
if [ "$bench" = 1 ]; then
  command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
  command -v nginx   >/dev/null 2>&1 || need+=(nginx-light)
  command -v wrk     >/dev/null 2>&1 || need+=(wrk)
fi
if [ "$tests" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
if [ "$bgp" = 1 ]; then
  command -v bird >/dev/null 2>&1 || need+=(bird2)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: need root to install: ${need[*]}" >&2; exit 1; fi
  echo "setup: installing ${need[*]} (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ! -d node_modules/koffi ] || [ ! -d node_modules/tsx ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
if command -v clang >/dev/null 2>&1; then
  bash scripts/build-bpf.sh --if-stale
fi
say "ok"
