#!/usr/bin/env bash
# Makes a headless Chromium available for the dashboard's browser test
# (cmd/api TestMonitoringInABrowser): the Debian chromium package, installed
# when it is missing and this runs as root. Never fails: where no browser can
# be installed the test skips and says why.
set -uo pipefail

log() { echo "chromium: $*" >&2; }

for b in "${CRMQ_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  [ -n "$b" ] && [ -x "$b" ] && exit 0
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  log "no chromium and cannot install it here (needs root and apt-get): the browser test will skip"
  exit 0
fi
log "installing the Debian chromium package for the dashboard's browser test"
if ! { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
  log "installing chromium failed: the browser test will skip"
fi
exit 0
