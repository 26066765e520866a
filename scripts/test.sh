#!/usr/bin/env bash
# The test command (npm test): installs what is missing, typechecks, then runs every test file
# with node's test runner. Kernel tests skip themselves when not root; CI runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --quiet --bgp --test
npx tsc -p tsconfig.json --noEmit
mapfile -t files < <(find src test bench -name '*.test.ts' | sort)
exec node --import tsx --test --test-concurrency=2 "${files[@]}"
