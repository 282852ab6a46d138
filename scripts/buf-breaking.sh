#!/usr/bin/env bash
# Fails when proto/ changes break wire or source compatibility (buf breaking,
# FILE rules, vendored protos excluded: see buf.yaml) against an earlier state:
#   scripts/buf-breaking.sh [GIT-REF]
# Without a ref: on a branch other than main, compare with main; on main, with
# HEAD when proto/ has uncommitted changes, else with HEAD~1 (the last commit's
# change). Skips, successfully, when that state has no herd.v1 proto yet or the
# history is too shallow to have it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"

ref="${1:-}"
if [ -z "$ref" ]; then
  branch="$(git rev-parse --abbrev-ref HEAD)"
  if [ "$branch" != main ] && git rev-parse --verify --quiet main >/dev/null; then
    ref=main
  elif ! git diff --quiet HEAD -- proto buf.yaml; then
    ref=HEAD
  else
    ref=HEAD~1
  fi
fi

if ! base="$(git rev-parse --verify --quiet "$ref^{commit}")"; then
  echo "buf-breaking: skipped: no commit '$ref' in this history"
  exit 0
fi
if ! git cat-file -e "$base:proto/herd/v1/herd.proto" 2>/dev/null \
  || ! git cat-file -e "$base:buf.yaml" 2>/dev/null; then
  echo "buf-breaking: skipped: $ref ($base) has no herd.v1 proto yet"
  exit 0
fi

buf breaking --against ".git#ref=$base"
echo "buf-breaking: no breaking change against $ref ($base)"
