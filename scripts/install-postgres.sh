#!/usr/bin/env bash
# Installs the PostgreSQL server and client programs dbtwin's tests and demo
# need, if they are missing. Debian/Ubuntu (apt); elsewhere it says what to do.
set -euo pipefail

have_server() {
  for d in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && [ -x "$d/pg_dump" ] && return 0
  done
  return 1
}

if have_server; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "PostgreSQL server binaries (initdb, postgres, pg_dump) are missing." >&2
  echo "Install PostgreSQL 13 or newer (macOS: brew install postgresql@16) or set DBTWIN_PG_BINDIR." >&2
  exit 1
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing PostgreSQL from apt (server binaries for dbtwin's sandboxes)..." >&2
$SUDO apt-get update -qq
# postgresql pulls the distribution's current major; the package's own
# cluster is not needed (dbtwin starts its own), so it is stopped if running.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql postgresql-contrib >/dev/null
$SUDO service postgresql stop >/dev/null 2>&1 || true
have_server
