#!/usr/bin/env bash
# Makes sure a Go new enough for sdk/go/go.mod is there: the one on PATH when it is, else the
# pinned toolchain below in .tools/go (bin/go), taken from the Go module proxy, where every Go
# release is the module golang.org/toolchain (what `GOTOOLCHAIN=auto` fetches), and checked
# against its pinned go.sum hash. Debian's golang-go (1.19 on bookworm) is too old for the SDK
# and cannot switch toolchains itself (that came with Go 1.21), so it is not used.
# Afterwards put .tools/go/bin first on PATH (setup.sh and scripts/test.mjs do).
# Needs curl and python3; GOPROXY (default https://proxy.golang.org) is honoured.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

GO_VERSION=1.26.8
declare -A GO_SUM=( # h1: hashes, as `go` would check them (sum.golang.org)
  [linux-amd64]="h1:ZOmGe1OnfREDMIdb1Qi4G9JSuDPBLGExZMQ4nis1RXM="
  [linux-arm64]="h1:sYL/O6MqS68ML0kjsQ36WoYIpJqkw60TxizWUYUKQMc="
)
need="$(sed -n 's/^go \([0-9.]*\)$/\1/p' sdk/go/go.mod)"
export PATH="$root/.tools/go/bin:$PATH"

# "1.26.0" → comparable "001026000"
ver() { IFS=. read -r a b c <<<"$1"; printf '%03d%03d%03d' "$a" "${b:-0}" "${c:-0}"; }
have=""
if command -v go >/dev/null; then
  # Go 1.19 has no GOVERSION in `go env`; `go version` says "go version go1.19.8 linux/amd64".
  have="$(GOTOOLCHAIN=local go version | awk '{print $3}' | sed 's/^go//; s/[^0-9.].*//')"
fi
if [ -n "$have" ] && [ "$(ver "$have")" -ge "$(ver "$need")" ]; then
  echo "setup-go: go $have on PATH ($(command -v go)) is new enough (sdk/go needs $need)" >&2
  exit 0
fi

missing() {
  echo "setup-go: $1" >&2
  echo "setup-go: the Go SDK needs Go $need or newer (sdk/go/go.mod); Debian's golang-go is older." >&2
  echo "setup-go: put Go ≥ $need on PATH (https://go.dev/dl), or let this script fetch go$GO_VERSION from the Go module proxy (needs curl, python3 and a reachable GOPROXY)." >&2
  exit 1
}
case "$(uname -m)" in
  x86_64) platform=linux-amd64 ;;
  aarch64) platform=linux-arm64 ;;
  *) missing "no pinned Go toolchain for $(uname -s)/$(uname -m)" ;;
esac
command -v curl >/dev/null || missing "curl is not installed (apt-get install curl)"
command -v python3 >/dev/null || missing "python3 is not installed (apt-get install python3)"
proxy="$(printf '%s' "${GOPROXY:-https://proxy.golang.org}" | tr ',|' '\n\n' | grep -m1 '^https\?://' || true)"
[ -n "$proxy" ] || missing "GOPROXY ($GOPROXY) names no proxy to fetch the toolchain from"
version="v0.0.1-go$GO_VERSION.$platform"
echo "setup-go: ${have:+go $have is too old; }fetching go$GO_VERSION ($platform) from $proxy into .tools/go" >&2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
curl -fsSL --retry 3 -o "$tmp/go.zip" "$proxy/golang.org/toolchain/@v/$version.zip" ||
  missing "could not download golang.org/toolchain@$version from $proxy"
# Verify the module zip as `go` does (dirhash h1), then unpack it with file modes kept.
python3 - "$tmp/go.zip" "${GO_SUM[$platform]}" "golang.org/toolchain@$version/" "$tmp/go" <<'PY'
import base64, hashlib, os, sys, zipfile
path, want, prefix, dest = sys.argv[1:]
z = zipfile.ZipFile(path)
names = sorted(n for n in z.namelist() if not n.endswith("/"))
summary = "".join(f"{hashlib.sha256(z.read(n)).hexdigest()}  {n}\n" for n in names)
got = "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()
if got != want:
    sys.exit(f"setup-go: checksum mismatch for {prefix}: got {got}, want {want}")
for info in z.infolist():
    if info.is_dir() or not info.filename.startswith(prefix):
        continue
    out = os.path.join(dest, info.filename[len(prefix):])
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(z.read(info))
    os.chmod(out, (info.external_attr >> 16) & 0o777 or 0o644)
PY
rm -rf .tools/go
mkdir -p .tools
mv "$tmp/go" .tools/go
echo "setup-go: $(.tools/go/bin/go version) in .tools/go/bin" >&2
