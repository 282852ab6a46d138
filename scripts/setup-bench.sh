#!/usr/bin/env bash
# What `npm run bench` needs beyond `npm install`: Debian's wrk (the load generator: a C event
# loop with µs latency histograms) and nginx (the reference proxy of the data-plane benchmark,
# run as an unprivileged foreground process by the bench, never as a service), and the
# data-plane bench's workers, relay and proxy prototype, built into .tools/bench: bench/c-worker,
# bench/c-relay and bench/c-proxy with cc, bench/go-worker and bench/go-herd (the Go herd library's harness,
# standard library only) with the Go of scripts/setup-go.sh (the bench rebuilds them too).
# Idempotent; needs root for apt.
# Usage: scripts/setup-bench.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$root/.tools/go/bin:$PATH"
mkdir -p "$root/.tools/bench"
(cd "$root/bench/go-worker" && GOFLAGS=-buildvcs=false go build -o "$root/.tools/bench/go-worker" main.go)
(cd "$root/bench/go-herd" && GOFLAGS=-buildvcs=false go build -o "$root/.tools/bench/go-herd" .)
for c in c-worker/worker c-relay/relay c-proxy/proxy; do
  cc -O2 -Wall -o "$root/.tools/bench/${c%%/*}" "$root/bench/$c.c"
done
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
# policy-rc.d 101: install without starting the packaged service on port 80.
printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
$SUDO chmod +x /usr/sbin/policy-rc.d
apt_install() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "$@"; }
# nginx-light is gone from newer Debian releases; plain nginx is the same binary there.
apt_install "${missing[@]}" || apt_install "${missing[@]/nginx-light/nginx}"
$SUDO rm -f /usr/sbin/policy-rc.d
