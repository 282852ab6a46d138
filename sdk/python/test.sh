#!/usr/bin/env bash
# Checks the Python SDK from a fresh clone: installs it (editable, with its test extras) into
# the repo's .venv, type-checks it strictly, and runs its pytest suite. Needs node_modules
# (the tests start sdk/ts/test/stub-herd-main.ts with tsx).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet -e "./sdk/python[test]"
(cd sdk/python && ../../.venv/bin/mypy --strict src/herd/__init__.py src/herd/_core.py \
  src/herd/client.py src/herd/aio.py src/herd/errors.py)
.venv/bin/python -m pytest sdk/python "$@"
