#!/usr/bin/env bash
# Builds the release binaries, installs the pinned Python `mcp` package (and the other MCP peers)
# and runs bench/actions: Portico's catalog_query_catalog_entities against a Python server on
# the `mcp` package, over the same generated 10,000-entity catalog.
#   bench/actions/run.sh [--calls N] [--concurrency 1,16] [--python-workers N] [--python-only]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../../scripts/lib/mcp-peers.sh
source scripts/lib/mcp-peers.sh
if [[ " $* " == *" --python-only "* ]]; then
  cargo build --release -p bench-actions
else
  cargo build --release -p portico -p bench-actions
fi
install_mcp_peers
./target/release/bench-actions --portico target/release/portico --python "$PORTICO_MCP_PYTHON" "$@"
