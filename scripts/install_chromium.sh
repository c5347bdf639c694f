#!/usr/bin/env bash
# Make Debian's Chromium available for the human-evaluation browser tests (Playwright
# drives /usr/bin/chromium; it never downloads a browser). Needs root and apt-get; where
# either is missing it says so and the browser tests skip, naming the reason.
set -uo pipefail
if command -v chromium > /dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null 2>&1; then
  echo "install_chromium: not root or no apt-get; install Debian's chromium to run the browser tests" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q chromium > /tmp/install_chromium.log 2>&1 \
  || { apt-get update -q >> /tmp/install_chromium.log 2>&1 \
       && apt-get install -y -q chromium >> /tmp/install_chromium.log 2>&1; } \
  || { echo "install_chromium: apt-get failed (see /tmp/install_chromium.log)" >&2; exit 1; }
