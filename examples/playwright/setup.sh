#!/usr/bin/env bash
# Installs what the Python client of this example needs into the repo's .venv: the herd
# Python SDK and Playwright for Python pinned to the npm playwright that runs the workers
# (a client must match its run-server's version). Never downloads a browser: the workers use
# Debian's chromium (scripts/setup-chromium.sh). Idempotent. Usage: examples/playwright/setup.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
version="$(node -p 'require("playwright/package.json").version')"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet -e ./sdk/python "playwright==${version}"
.venv/bin/python -c 'import herd, playwright; print("python client ready: playwright", "'"$version"'")'
