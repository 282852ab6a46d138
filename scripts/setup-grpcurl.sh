#!/bin/sh
# Installs grpcurl into .tools/bin (gitignored) for the control plane's reflection tests.
# Needs Go and access to the Go module proxy; idempotent (skips when the pinned version is there).
set -eu
VERSION=v1.9.3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/.tools/bin"
STAMP="$BIN/.grpcurl-version"
# `go install` builds report "dev build", so the installed version is kept in a stamp file.
if [ -x "$BIN/grpcurl" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
mkdir -p "$BIN"
GOBIN="$BIN" go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$VERSION"
echo "$VERSION" >"$STAMP"
echo "grpcurl $VERSION installed in $BIN"
