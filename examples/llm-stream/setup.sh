#!/usr/bin/env bash
# Installs what the Python client of this example needs into the repo's .venv: the herd Python
# SDK and httpx, pinned. Idempotent: does nothing (and needs no network) once both are there.
# Usage: examples/llm-stream/setup.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
httpx_version="0.28.1"
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -c 'import sys, herd, httpx; sys.exit(httpx.__version__ != sys.argv[1])' \
  "$httpx_version" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet -e ./sdk/python "httpx==${httpx_version}"
fi
.venv/bin/python -c 'import herd, httpx; print("python client ready: httpx", httpx.__version__)'
