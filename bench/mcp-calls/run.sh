#!/usr/bin/env bash
# Installs and starts the pinned MCP peers on loopback, then runs bench/mcp-calls.
#   bench/mcp-calls/run.sh [--calls N] [--only echo|everything]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../../scripts/lib/mcp-peers.sh
source scripts/lib/mcp-peers.sh
start_mcp_peers
cargo run --release -p bench-mcp-calls -- "$@"
