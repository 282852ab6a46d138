#!/usr/bin/env bash
# The Python and Go SDK checks, for `npm test` (the TS SDK's specs, and the scenario suite
# that drives all three SDKs against the live daemon, run under vitest). Installs what they
# need from a fresh clone: the Python SDK into the repo's .venv, Go modules via the proxy.
# Exits non-zero when either fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
status=0
bash "$root/sdk/python/test.sh" -q || status=1
(cd "$root/sdk/go" && go vet ./... && go test -count=1 ./...) || status=1
exit "$status"
