# A real OAuth 2.0 / OpenID Connect provider for Portico's auth tests: panva's oidc-provider at
# the version pinned in tests/oidc-provider/package-lock.json, run by tests/oidc-provider/server.mjs
# with the Node 22 that install_mcp_peers provides, on loopback only.
# Source this file, then:
#   install_oidc_provider   npm packages from tests/oidc-provider/package-lock.json (runs
#                           install_mcp_peers first when PORTICO_MCP_NODE is unset)
#   start_oidc_provider     starts it on 127.0.0.1:$PORTICO_OIDC_PORT (default 38110) with a random
#                           client secret, waits for its discovery document and exports
#                           PORTICO_TEST_OIDC_* for the tests; it stops when the shell exits
#                           (chained with any EXIT trap already set, e.g. mcp-peers')
#   stop_oidc_provider      stops it (also run on exit)
# Exported by start_oidc_provider:
#   PORTICO_TEST_OIDC_ISSUER              http://127.0.0.1:PORT (discovery under /.well-known/)
#   PORTICO_TEST_OIDC_CLIENT_ID           portico (client_secret_basic)
#   PORTICO_TEST_OIDC_CLIENT_ID_POST      portico-post (client_secret_post, same secret)
#   PORTICO_TEST_OIDC_CLIENT_SECRET       random per start
#   PORTICO_TEST_OIDC_SECRETS_FILE        every secret the provider issued, one a line (kept
#                                         outside the log folder, so a scan of logs skips it)
#   PORTICO_TEST_OIDC_LOG_DIR             the provider's log (oidc-provider.log)
# OIDC_ACCESS_TOKEN_TTL and OIDC_EXTRA_SCOPES, when exported before start_oidc_provider, reach the
# server (see tests/oidc-provider/server.mjs). The selftest: "$PORTICO_MCP_NODE"
# tests/oidc-provider/selftest.mjs (uses the running provider when PORTICO_TEST_OIDC_ISSUER is set).

PORTICO_OIDC_DIR="${PORTICO_OIDC_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tests/oidc-provider" && pwd)}"
PORTICO_OIDC_PORT="${PORTICO_OIDC_PORT:-38110}"

if ! declare -F install_mcp_peers >/dev/null; then
  # shellcheck source=mcp-peers.sh
  source "$(dirname "${BASH_SOURCE[0]}")/mcp-peers.sh"
fi

install_oidc_provider() {
  [ -n "${PORTICO_MCP_NODE:-}" ] || install_mcp_peers
  npm ci --prefix "$PORTICO_OIDC_DIR" --no-audit --no-fund --loglevel=error
}

# True when node_modules holds the oidc-provider version that package.json pins.
_oidc_installed() {
  local want have
  want=$(sed -n 's/^ *"oidc-provider": "\([^"]*\)".*/\1/p' "$PORTICO_OIDC_DIR/package.json")
  have=$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' \
    "$PORTICO_OIDC_DIR/node_modules/oidc-provider/package.json" 2>/dev/null)
  [ -n "$have" ] && [ "$want" = "$have" ]
}

start_oidc_provider() {
  if [ -z "${PORTICO_MCP_NODE:-}" ] || ! _oidc_installed; then
    install_oidc_provider
  fi
  stop_oidc_provider
  local port=$PORTICO_OIDC_PORT secret i
  secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  PORTICO_TEST_OIDC_LOG_DIR=$(mktemp -d /tmp/portico-oidc-provider.XXXXXX)
  PORTICO_TEST_OIDC_SECRETS_FILE=$(mktemp /tmp/portico-oidc-secrets.XXXXXX)
  (cd "$PORTICO_OIDC_DIR" && exec env PORT="$port" OIDC_CLIENT_SECRET="$secret" \
    OIDC_SECRETS_FILE="$PORTICO_TEST_OIDC_SECRETS_FILE" "$PORTICO_MCP_NODE" server.mjs) \
    >"$PORTICO_TEST_OIDC_LOG_DIR/oidc-provider.log" 2>&1 &
  PORTICO_OIDC_PID=$!

  local previous='' current
  current=$(trap -p EXIT)
  if [ -n "$current" ]; then
    eval "set -- $current"
    previous=$3
  fi
  case ";$previous;" in
    *stop_oidc_provider*) ;;
    # shellcheck disable=SC2064
    *) trap "stop_oidc_provider${previous:+; $previous}" EXIT ;;
  esac

  for i in $(seq 1 100); do
    if curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$port/.well-known/openid-configuration" 2>/dev/null; then
      break
    fi
    if [ "$i" = 100 ] || ! kill -0 "$PORTICO_OIDC_PID" 2>/dev/null; then
      echo "oidc-provider did not start on 127.0.0.1:$port; its log:" >&2
      cat "$PORTICO_TEST_OIDC_LOG_DIR/oidc-provider.log" >&2 || true
      stop_oidc_provider
      return 1
    fi
    sleep 0.2
  done

  export PORTICO_TEST_OIDC_ISSUER="http://127.0.0.1:$port"
  export PORTICO_TEST_OIDC_CLIENT_ID=portico
  export PORTICO_TEST_OIDC_CLIENT_ID_POST=portico-post
  export PORTICO_TEST_OIDC_CLIENT_SECRET="$secret"
  export PORTICO_TEST_OIDC_SECRETS_FILE PORTICO_TEST_OIDC_LOG_DIR
  echo "OIDC provider on $PORTICO_TEST_OIDC_ISSUER (log in $PORTICO_TEST_OIDC_LOG_DIR)"
}

stop_oidc_provider() {
  if [ -n "${PORTICO_OIDC_PID:-}" ]; then
    kill "$PORTICO_OIDC_PID" 2>/dev/null || true
    wait "$PORTICO_OIDC_PID" 2>/dev/null || true
  fi
  PORTICO_OIDC_PID=
}
