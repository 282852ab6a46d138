#!/usr/bin/env bash
# Builds herd's native WebSocket tunnel relay (native/tunnel-relay/tunnel-relay.c) with the
# system's cc into .tools/native/tunnel-relay, where the data plane looks for it: when it is
# there, open tunnels are handed to it after their upgrade; when not (no cc, or this script
# never ran), they stay on Node's `pipe` (see docs/configuration.md, data_plane). Idempotent:
# rebuilds only when the source is newer than the binary.
# Usage: scripts/setup-native.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/native/tunnel-relay/tunnel-relay.c"
out="$root/.tools/native/tunnel-relay"
if ! command -v cc >/dev/null 2>&1; then
  echo "no cc: the native tunnel relay is not built (tunnels use Node's pipe)" >&2
  exit 0
fi
if [ -x "$out" ] && [ "$out" -nt "$src" ]; then
  echo "native tunnel relay up to date" >&2
  exit 0
fi
mkdir -p "$(dirname "$out")"
cc -O2 -Wall -Wextra -o "$out.tmp.$$" "$src"
mv -f "$out.tmp.$$" "$out"
echo "native tunnel relay built: $out" >&2
