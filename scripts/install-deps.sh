#!/usr/bin/env bash
# Installs, on a fresh Debian machine, the system packages the build and the tests need.
# Idempotent: installs only what is missing. Needs root (or sudo) when something is missing.
set -euo pipefail

# command-to-check  debian-package
needed=(
  "cc gcc"
  "openssl openssl"
  "pkg-config pkg-config"
  "ip iproute2"
  "setpriv util-linux"
  "openconnect openconnect"
  "ping iputils-ping"
  "/usr/lib/postgresql/15/bin/initdb postgresql-15"
  "python3 python3"
  "chromium chromium"
  "chromedriver chromium-driver"
  "docker-compose docker-compose"
  "curl curl"
  "/usr/include/openssl/ssl.h libssl-dev"
)

missing=()
for pair in "${needed[@]}"; do
  read -r cmd pkg <<<"$pair"
  command -v "$cmd" >/dev/null 2>&1 || [ -e "$cmd" ] || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "==> installing system packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# python3 -m venv needs ensurepip (python3-venv on Debian).
if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  echo "==> installing python3-venv"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends python3-venv
fi

command -v cargo >/dev/null 2>&1 || {
  echo "error: cargo not found; install the Rust toolchain (rustup) first" >&2
  exit 1
}
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

# cargo-deny, pinned (scripts/test.sh runs `cargo deny check`): built from crates.io once,
# about 4.5 minutes on a 2-CPU machine.
CARGO_DENY_VERSION=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  echo "==> installing cargo-deny $CARGO_DENY_VERSION (cargo install --locked)"
  cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked
fi
