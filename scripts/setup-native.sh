#!/usr/bin/env bash
# Builds herd's native relay (native/tunnel-relay/tunnel-relay.c) with the system's cc into
# .tools/native/tunnel-relay, where herd looks for it: the data plane hands open WebSocket
# tunnels (and cluster relay hops) to it, and the sandbox runs it as the relay into a worker's
# private network. When it is not there (no cc, or this script never ran), tunnels stay on
# Node's `pipe` (see docs/configuration.md, data_plane) and the sandbox relays with socat.
# Idempotent: rebuilds only when the source is newer than the binary.
# Usage: scripts/setup-native.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/native/tunnel-relay/tunnel-relay.c"
out="$root/.tools/native/tunnel-relay"
if ! command -v cc >/dev/null 2>&1; then
  echo "no cc: the native relay is not built (tunnels use Node's pipe, sandboxes socat)" >&2
  exit 0
fi
if [ -x "$out" ] && [ "$out" -nt "$src" ]; then
  echo "native relay up to date" >&2
  exit 0
fi
mkdir -p "$(dirname "$out")"
cc -O2 -Wall -Wextra -o "$out.tmp.$$" "$src"
mv -f "$out.tmp.$$" "$out"
echo "native relay built: $out" >&2
