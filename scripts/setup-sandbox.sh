#!/usr/bin/env bash
# Installs what `isolation` (user / network / filesystem) needs from Debian: bubblewrap (the
# namespaces and mounts), socat (the relay into a worker's private network) and util-linux's
# setpriv (uid switch; usually present). Idempotent: installs only what is missing.
# Needs root (apt). Usage: scripts/setup-sandbox.sh
set -euo pipefail
missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v socat >/dev/null || missing+=(socat)
command -v setpriv >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -eq 0 ]; then
  echo "bubblewrap, socat, setpriv present: $(bwrap --version)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
bwrap --version
