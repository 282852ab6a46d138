#!/usr/bin/env bash
# Installs everything herd needs to run and to pass `npm test`, from a fresh clone, idempotently:
# npm packages, Debian's chromium (Playwright tests; browsers are never downloaded), bubblewrap
# and socat (worker isolation), redis-server (cluster tests), the pinned code generators
# (.tools/bin, .venv), Go when PATH has none new enough (.tools/go), grpcurl, and the Python and
# Go SDK dependencies.
# Usage: scripts/setup.sh [--skip-npm]   (root for apt; every step skips what is already there;
#        `npm test` runs it with --skip-npm first, so a fresh clone needs only `npm install`)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

step() { printf '\n== setup: %s\n' "$*" >&2; }

step "npm packages"
if [ "${1:-}" = "--skip-npm" ]; then
  echo "skipped (--skip-npm)" >&2
elif [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "node_modules up to date" >&2
else
  npm install --no-audit --no-fund
fi

step "chromium (Debian)"
bash scripts/setup-chromium.sh

step "sandbox tools: bubblewrap, socat, nftables (Debian)"
bash scripts/setup-sandbox.sh

step "redis-server (Debian; cluster tests and benchmarks start their own)"
if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server present: $(redis-server --version | cut -d' ' -f3)" >&2
else
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  # Debian's package starts a system-wide instance; herd's tests never use it.
  (systemctl disable --now redis-server 2>/dev/null || service redis-server stop 2>/dev/null) || true
fi

step "Go ≥ sdk/go/go.mod's (on PATH, else fetched into .tools/go)"
bash scripts/setup-go.sh
export PATH="$root/.tools/go/bin:$PATH"

step "code generators"
bash scripts/setup-codegen.sh

if [ -f scripts/setup-grpcurl.sh ]; then
  step "grpcurl"
  bash scripts/setup-grpcurl.sh
fi

step "native tunnel relay (cc; the data plane's WebSocket tunnels)"
bash scripts/setup-native.sh

step "Python SDK (.venv)"
.venv/bin/python -m pip install --quiet -e "./sdk/python[test]"

step "Playwright example's Python client"
bash examples/playwright/setup.sh

step "LLM-stream example's Python client"
bash examples/llm-stream/setup.sh

step "Go SDK modules"
(cd sdk/go && go mod download)
