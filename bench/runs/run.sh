#!/usr/bin/env bash
# Builds the release binaries and runs bench/runs: assistant runs through portico serve with an
# instant scripted model (in the bench process), beside the model called directly.
#   bench/runs/run.sh [--runs N] [--concurrent N] [--tool-calls] [--postgres URL | --local-postgres]
# --local-postgres starts a throwaway PostgreSQL on loopback (scripts/lib/postgres.sh) and runs
# on it instead of SQLite.
set -euo pipefail
cd "$(dirname "$0")/../.."
args=()
local_pg=0
for a in "$@"; do
  if [[ "$a" == "--local-postgres" ]]; then local_pg=1; else args+=("$a"); fi
done
cargo build --release -p portico -p bench-runs
if [[ $local_pg == 1 ]]; then
  # shellcheck source=../../scripts/lib/postgres.sh
  source scripts/lib/postgres.sh
  PORTICO_PG_PORT=55443 start_test_postgres
  args+=(--postgres "$PORTICO_TEST_POSTGRES_URL")
fi
./target/release/bench-runs --portico target/release/portico ${args[@]+"${args[@]}"}
