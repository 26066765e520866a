#!/usr/bin/env bash
# Compiles baton's BPF programs (bpf/*.c) into bpf/build/*.o with clang. The objects are committed, so a machine
# without clang can still run baton; `--if-stale` rebuilds only when a source or header is newer than an object.
set -euo pipefail
cd "$(dirname "$0")/../bpf"
stale=0
if [ "${1:-}" = "--if-stale" ]; then
  for c in *.c; do
    o="build/${c%.c}.o"
    if [ ! -f "$o" ]; then stale=1; break; fi
    for s in "$c" *.h; do [ "$s" -nt "$o" ] && stale=1; done
  done
  [ "$stale" = 1 ] || exit 0
fi
command -v clang >/dev/null 2>&1 || { echo "build-bpf: clang not found (run scripts/setup.sh)" >&2; exit 1; }
mkdir -p build
arch_inc="/usr/include/$(uname -m)-linux-gnu"
for c in *.c; do
  clang -O2 -g -target bpf -Wall -Werror -I"$arch_inc" -I. -c "$c" -o "build/${c%.c}.o"
  # DWARF is only for debuggers; BTF (kept) is what libbpf and the TypeScript codecs read
  llvm-strip -g "build/${c%.c}.o"
done
