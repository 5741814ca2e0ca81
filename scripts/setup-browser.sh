#!/usr/bin/env bash
# Debian's chromium for the browser tests (Playwright drives it; `playwright install` cannot download here).
# Safe to rerun: does nothing when /usr/bin/chromium is there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "installing Debian's chromium for the browser tests (once)..." >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2 || true
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2
[ -x /usr/bin/chromium ] || { echo "s2: chromium did not install: the browser tests need /usr/bin/chromium" >&2; exit 1; }
