#!/usr/bin/env bash
# Runs the validation benchmark: Portico against @backstage/catalog-model in Node.
#
#   bench/validate/run.sh [--entities N]      (default 100000)
#
# Installs the pinned Node packages on first use, then builds and runs the Rust half, which
# generates the corpus, times Portico, runs bench/validate/node/bench.js and prints the table.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -d bench/validate/node/node_modules ]; then
  npm ci --prefix bench/validate/node --no-audit --no-fund
fi
exec cargo run --release -p bench-validate -- "$@"
