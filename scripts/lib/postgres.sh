# Starts a throwaway PostgreSQL cluster on loopback for the tests and exports
# PORTICO_TEST_POSTGRES_URL. Installs PostgreSQL from Debian when it is missing.
# Source this file, then call start_test_postgres; the cluster stops when the shell exits.

PORTICO_PG_PORT="${PORTICO_PG_PORT:-55432}"

ensure_apt_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

start_test_postgres() {
  ensure_apt_packages postgresql
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  local dir
  dir=$(mktemp -d /tmp/portico-pg.XXXXXX)
  chown postgres:postgres "$dir"
  su postgres -s /bin/sh -c "$bindir/initdb -D '$dir/data' -A trust -U postgres >/dev/null"
  su postgres -s /bin/sh -c "$bindir/pg_ctl -D '$dir/data' -l '$dir/log' -w -o \"-h 127.0.0.1 -p $PORTICO_PG_PORT -k '$dir' -c fsync=off -c max_connections=300\" start >/dev/null"
  PORTICO_PG_DIR="$dir"
  PORTICO_PG_BIN="$bindir"
  trap stop_test_postgres EXIT
  export PORTICO_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORTICO_PG_PORT/postgres"
  echo "PostgreSQL test cluster on 127.0.0.1:$PORTICO_PG_PORT"
}

stop_test_postgres() {
  if [ -n "${PORTICO_PG_DIR:-}" ]; then
    su postgres -s /bin/sh -c "$PORTICO_PG_BIN/pg_ctl -D '$PORTICO_PG_DIR/data' -m fast stop >/dev/null" || true
    rm -rf "$PORTICO_PG_DIR"
  fi
}
