#!/usr/bin/env bash
# Installs Debian's chromium for the Playwright data-plane test (playwright itself comes from
# npm; browsers are never downloaded). Idempotent: does nothing when /usr/bin/chromium exists.
# Needs root (apt). Usage: scripts/setup-chromium.sh
set -euo pipefail
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ -x /usr/bin/chromium ]; then
  echo "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
/usr/bin/chromium --version
