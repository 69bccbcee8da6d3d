#!/usr/bin/env bash
# The offline query data of sqlx's checked macros (`.sqlx/` at the workspace root).
#
#   scripts/sqlx-prepare.sh           regenerate .sqlx/ after changing a query or a migration
#   scripts/sqlx-prepare.sh --check   fail when a query and the migrated schema disagree, or
#                                     when .sqlx/ is stale (what scripts/test.sh runs)
#
# Starts a throw-away PostgreSQL 15 cluster on a Unix socket, applies migrations/ with psql,
# then builds mgmt-server (all targets) with the macros online: each query! is checked
# against the live schema and its data written to a temporary directory, which replaces
# .sqlx/ or is compared with it. Needs no sqlx-cli. Normal builds stay offline
# (SQLX_OFFLINE=true in .cargo/config.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=write
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
work=$(mktemp -d "${TMPDIR:-/tmp}/sqlx-prepare.XXXXXX")
chmod 755 "$work"

# initdb and postgres refuse to run as root: run them as the postgres user then.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" = 0 ]; then chown postgres: "$work"; fi

cleanup() {
  as_owner "$PG_BIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_owner "$PG_BIN/initdb" -D "$work/data" -U postgres -A trust -E UTF8 --locale=C \
  --no-sync --no-instructions >"$work/initdb.log"
as_owner "$PG_BIN/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w -s \
  -o "-c listen_addresses='' -k $work -c fsync=off" start

for migration in migrations/*.sql; do
  psql -X -q -h "$work" -U postgres -d postgres -v ON_ERROR_STOP=1 -1 -f "$migration" >/dev/null
done

out="$work/sqlx"
mkdir "$out"
# The macros read their environment only when the crate is compiled: make cargo compile it.
touch mgmt-server/src/lib.rs
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" \
  DATABASE_URL="postgres://postgres@localhost/postgres?host=$work" \
  cargo check -p mgmt-server --all-targets --locked --quiet

if [ "$mode" = check ]; then
  if ! diff -r .sqlx "$out" >"$work/diff"; then
    cat "$work/diff" >&2
    echo ".sqlx/ is stale: run scripts/sqlx-prepare.sh and commit .sqlx/" >&2
    exit 1
  fi
  echo ".sqlx/ matches the queries and migrations/"
else
  rm -rf .sqlx
  cp -r "$out" .sqlx
  echo "wrote $(find .sqlx -name 'query-*.json' | wc -l) queries to .sqlx/"
fi
