#!/usr/bin/env bash
# cargo deny check advisories, against the freshest RustSec advisory database this machine
# can get: cargo-deny fetches it from github.com when github.com answers; otherwise the
# snapshot committed in supply-chain/advisory-db.bundle is restored where cargo-deny keeps
# its database and the check runs offline against it, saying how old it is. Either way the
# check runs; it never skips. `scripts/advisories.sh --refresh` replaces the snapshot (needs
# github.com).
set -euo pipefail
cd "$(dirname "$0")/.."

UPSTREAM=https://github.com/RustSec/advisory-db
BUNDLE=supply-chain/advisory-db.bundle
# Where cargo-deny 0.20 keeps the database of the default db-urls: $CARGO_HOME/advisory-dbs/
# advisory-db-<hash of the URL>.
DB="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691"

reachable() { timeout 15 git ls-remote --exit-code "$UPSTREAM" HEAD >/dev/null 2>&1; }

if [ "${1:-}" = --refresh ]; then
  reachable || { echo "error: $UPSTREAM cannot be reached; the snapshot is unchanged" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  git clone -q --depth 1 --branch main "$UPSTREAM" "$work/db"
  upstream_commit=$(git -C "$work/db" rev-parse HEAD)
  upstream_date=$(git -C "$work/db" log -1 --format=%cI)
  # One commit without history (the bundle stays small), dated as upstream's.
  snapshot=$(GIT_AUTHOR_DATE="$upstream_date" GIT_COMMITTER_DATE="$upstream_date" \
    git -C "$work/db" commit-tree "HEAD^{tree}" \
    -m "RustSec advisory-db snapshot: tree of $upstream_commit ($upstream_date)")
  git -C "$work/db" branch -f main "$snapshot"
  git -C "$work/db" bundle create "$PWD/$BUNDLE" main
  echo "snapshot of $UPSTREAM at $upstream_commit ($upstream_date) written to $BUNDLE"
  exit 0
fi

if reachable; then
  echo "advisory database: fetched from $UPSTREAM"
  exec cargo deny --locked check --hide-inclusion-graph advisories
fi

snapshot=$(git bundle list-heads "$BUNDLE" | awk '{print $1}')
if [ "$(git -C "$DB" rev-parse HEAD 2>/dev/null)" != "$snapshot" ]; then
  rm -rf "$DB"
  mkdir -p "$(dirname "$DB")"
  git clone -q --branch main "$BUNDLE" "$DB"
fi
made=$(git -C "$DB" log -1 --format=%ct)
echo "advisory database: $UPSTREAM cannot be reached; checking against the committed snapshot" \
  "($(git -C "$DB" log -1 --format=%s)), $(( ($(date +%s) - made) / 86400 )) days old." \
  "Refresh it with scripts/advisories.sh --refresh where github.com answers."
cargo deny --locked --offline check --hide-inclusion-graph advisories
