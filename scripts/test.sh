#!/usr/bin/env bash
# The project's test command: what CI runs (.ci/run) and what a developer runs.
# Installs missing system packages, then: format check, clippy with warnings denied, every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test --workspace"
cargo test --workspace --locked --no-fail-fast
