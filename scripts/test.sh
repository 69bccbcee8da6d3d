#!/usr/bin/env bash
# The project's test command: what CI runs (.ci/run) and what a developer runs.
# Installs missing system packages and tools, then: format check, clippy with warnings denied,
# cargo deny (licences, bans, sources, advisories), every test, the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "==> docker-compose config (the demo stack parses)"
docker-compose config -q

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> scripts/sqlx-prepare.sh --check (queries match migrations/, .sqlx/ is up to date)"
scripts/sqlx-prepare.sh --check

echo "==> cargo deny check licenses bans sources (deny.toml)"
cargo deny --locked check --hide-inclusion-graph licenses bans sources

echo "==> scripts/advisories.sh (cargo deny check advisories: RustSec, fetched or the committed snapshot)"
scripts/advisories.sh

echo "==> cargo test --workspace"
cargo test --workspace --locked --no-fail-fast

if [ "${SKIP_DEMO:-}" != 1 ]; then
  echo "==> demo: ./demo.sh --check (release build, seed scenario, openconnect session is Multiple-certificate)"
  DEMO_DIR=$(mktemp -d) ./demo.sh --check
fi
