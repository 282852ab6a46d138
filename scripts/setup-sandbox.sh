#!/usr/bin/env bash
# Installs what `isolation` (user / network / filesystem) needs from Debian: bubblewrap (the
# namespaces and mounts), socat (the relay into a worker's private network where herd's native
# relay, scripts/setup-native.sh, was not built) and util-linux's setpriv (uid switch; usually present), iproute2 and nftables (`network: egress`: a veth pair per
# worker, filtered in the host's namespace) and, for bench/egress.ts's comparison only, passt
# (pasta) and slirp4netns. Idempotent: installs only what is missing.
# Needs root (apt). Usage: scripts/setup-sandbox.sh
set -euo pipefail
missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v socat >/dev/null || missing+=(socat)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || missing+=(iproute2)
command -v nft >/dev/null || missing+=(nftables)
command -v pasta >/dev/null || missing+=(passt)
command -v slirp4netns >/dev/null || missing+=(slirp4netns)
if [ ${#missing[@]} -eq 0 ]; then
  echo "bubblewrap, socat, setpriv, ip, nft, pasta, slirp4netns present: $(bwrap --version)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
bwrap --version
