#!/usr/bin/env bash
# Regenerates every generated file from proto/ with buf and local plugins only
# (TS into gen/ and sdk/ts/gen, Python into sdk/python/src/herd/v1, Go into sdk/go/gen).
# Installs missing plugins first (scripts/setup-codegen.sh). Offline once set up.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [ -x scripts/setup-codegen.sh ]; then
  scripts/setup-codegen.sh
fi
export PATH="$root/.tools/bin:$root/.venv/bin:$root/node_modules/.bin:$PATH"

# buf's `clean` would wipe whole output dirs, and Python's output dir is the SDK's
# source root; so remove exactly the generated trees ourselves.
rm -rf gen sdk/ts/gen sdk/go/gen sdk/python/src/herd/v1
buf lint
buf generate
