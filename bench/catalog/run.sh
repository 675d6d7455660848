#!/usr/bin/env bash
# Builds the release binary, starts a throwaway PostgreSQL on loopback, and runs bench/catalog.
#   bench/catalog/run.sh [--entities N] [--sqlite-only]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../../scripts/lib/postgres.sh
source scripts/lib/postgres.sh
cargo build --release -p portico -p bench-catalog
if [[ " $* " != *" --sqlite-only "* ]]; then
  PORTICO_PG_PORT=55442 start_test_postgres
fi
./target/release/bench-catalog --portico target/release/portico "$@"
