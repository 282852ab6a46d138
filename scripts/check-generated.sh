#!/usr/bin/env bash
# CI gate: generated code must match proto/. Regenerates into the tree, then
# fails (exit 1, listing the files) when anything under a generated path differs
# from what is committed, including new or deleted files.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

generated=(gen sdk/ts/gen sdk/go/gen sdk/python/src/herd/v1)
scripts/generate.sh
stale="$(git status --porcelain --untracked-files=all -- "${generated[@]}")"
if [ -n "$stale" ]; then
  echo "check-generated: generated code is stale; run 'npm run generate' and commit:" >&2
  echo "$stale" >&2
  exit 1
fi
echo "check-generated: generated code is up to date"
