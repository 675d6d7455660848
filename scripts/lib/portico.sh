# A running `portico serve` for checks that talk to it from outside: a fresh data directory, the
# examples catalog, a random static API token, loopback only. Source this file, then:
#   start_portico BINARY [PORT]   starts it (default port 38120), waits until it answers, and
#                                 exports PORTICO_URL (http://127.0.0.1:PORT) and PORTICO_TOKEN;
#                                 it stops when the shell exits (chained with any EXIT trap)
#   stop_portico                  stops it

start_portico() {
  local binary=$1 port=${2:-38120} i
  PORTICO_RUN_DIR=$(mktemp -d /tmp/portico-run.XXXXXX)
  PORTICO_TOKEN="ci-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  PORTICO_URL="http://127.0.0.1:$port"
  export PORTICO_TOKEN PORTICO_URL
  cat >"$PORTICO_RUN_DIR/app-config.yaml" <<YAML
backend:
  baseUrl: $PORTICO_URL
  listen: {host: 127.0.0.1, port: $port}
  auth:
    externalAccess:
      - type: static
        options: {token: $PORTICO_TOKEN, subject: checks}
catalog:
  locations: [{type: file, target: $(pwd)/examples/catalog}]
YAML
  # Every PORTICO_<PATH> variable is a configuration override: keep the test run's own out.
  local unset_vars
  unset_vars=$(env | sed -n 's/^\(PORTICO_[A-Za-z0-9_]*\)=.*/-u \1/p' | tr '\n' ' ')
  # shellcheck disable=SC2086
  (exec env $unset_vars PORTICO_LOG=warn "$binary" serve --config "$PORTICO_RUN_DIR/app-config.yaml" \
    --data-dir "$PORTICO_RUN_DIR/data") >"$PORTICO_RUN_DIR/portico.log" 2>&1 &
  PORTICO_PID=$!
  local previous
  previous=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
  case "$previous" in
    *stop_portico*) ;;
    *) trap "stop_portico${previous:+; $previous}" EXIT ;;
  esac
  for i in $(seq 1 100); do
    if curl -fsS "$PORTICO_URL/healthz" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  echo "portico serve did not start on $PORTICO_URL; its log:" >&2
  cat "$PORTICO_RUN_DIR/portico.log" >&2
  return 1
}

stop_portico() {
  if [ -n "${PORTICO_PID:-}" ]; then
    kill "$PORTICO_PID" 2>/dev/null || true
    wait "$PORTICO_PID" 2>/dev/null || true
    PORTICO_PID=
  fi
}
