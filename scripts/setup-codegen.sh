#!/usr/bin/env bash
# Installs the local protoc plugins that buf.gen.yaml runs, at pinned versions,
# and does nothing when they are already there (so generation stays offline after
# the first run):
#   .tools/bin/protoc-gen-go, .tools/bin/protoc-gen-connect-go  (go install)
#   .venv with grpcio-tools (protoc for the python/pyi builtins) and
#   protoc-gen-connectrpc (Connect Python stubs over google protobuf)
# TS's protoc-gen-es comes from node_modules (npm install).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

PROTOC_GEN_GO_VERSION=v1.36.12
CONNECT_GO_VERSION=v1.21.1
PY_CODEGEN_REQUIREMENTS=(
  "grpcio-tools==1.85.1"
  "protoc-gen-connectrpc==0.13.0"
)

# Go for `go install`: the one on PATH when new enough, else fetched into .tools/go.
bash scripts/setup-go.sh
export PATH="$root/.tools/go/bin:$PATH"

# Go plugins: a version stamp beside each binary, so a pin change reinstalls it.
mkdir -p .tools/bin
install_go_tool() { # <binary> <package@version>
  local bin="$1" pkg="$2" stamp=".tools/bin/$1.version"
  if [ -x ".tools/bin/$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg" ]; then
    return
  fi
  echo "setup-codegen: go install $pkg" >&2
  GOBIN="$root/.tools/bin" GOFLAGS=-mod=mod go install "$pkg"
  echo "$pkg" >"$stamp"
}
install_go_tool protoc-gen-go "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
install_go_tool protoc-gen-connect-go "connectrpc.com/connect/cmd/protoc-gen-connect-go@$CONNECT_GO_VERSION"

# Python venv: reinstall when the pinned list changes.
want="${PY_CODEGEN_REQUIREMENTS[*]}"
if [ ! -x .venv/bin/python ]; then
  echo "setup-codegen: creating .venv" >&2
  python3 -m venv .venv
fi
if [ "$(cat .venv/.herd-codegen 2>/dev/null)" != "$want" ]; then
  echo "setup-codegen: pip install $want" >&2
  .venv/bin/python -m pip install --quiet "${PY_CODEGEN_REQUIREMENTS[@]}"
  echo "$want" >.venv/.herd-codegen
fi

# buf runs protoc's builtin python/pyi generators through this shim, so no system
# protoc is needed: grpcio-tools carries one.
cat >.tools/bin/protoc <<'SH'
#!/bin/sh
exec "$(dirname "$0")/../../.venv/bin/python" -m grpc_tools.protoc "$@"
SH
chmod +x .tools/bin/protoc
