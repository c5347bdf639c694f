#!/usr/bin/env bash
# Make Debian's Chromium available for the human-evaluation browser tests (Playwright drives
# /usr/bin/chromium; it never downloads a browser).
#
#   sudo bash scripts/install_chromium.sh      # or as root: apt-get install chromium
#
# It changes the system only as root on a system with apt-get, and says so first;
# PARLAI_EMPATHY_NO_APT=1 keeps it from doing so. Without a browser the browser tests skip,
# naming the reason, and this script exits 0, except when PARLAI_EMPATHY_REQUIRE_BROWSER is
# set (CI), where a browser that cannot be installed is an error (exit 1).
set -uo pipefail
if command -v chromium > /dev/null 2>&1; then
  exit 0
fi
give_up() {
  echo "install_chromium: $1; the browser tests will skip." >&2
  echo "install_chromium: to run them, install Debian's chromium (sudo bash scripts/install_chromium.sh)" \
       "or set PARLAI_EMPATHY_CHROMIUM to a Chromium binary." >&2
  if [ -n "${PARLAI_EMPATHY_REQUIRE_BROWSER:-}" ]; then
    echo "install_chromium: PARLAI_EMPATHY_REQUIRE_BROWSER is set: a browser is required" >&2
    exit 1
  fi
  exit 0
}
if [ -n "${PARLAI_EMPATHY_NO_APT:-}" ]; then
  give_up "no chromium, and PARLAI_EMPATHY_NO_APT is set"
fi
if [ "$(id -u)" != 0 ]; then
  give_up "no chromium, and not root (nothing installed)"
fi
if ! command -v apt-get > /dev/null 2>&1; then
  give_up "no chromium, and no apt-get"
fi
LOG="$(mktemp -t install_chromium.XXXXXX)"
echo "install_chromium: running as root: installing Debian's chromium with apt-get" \
     "(log: $LOG; PARLAI_EMPATHY_NO_APT=1 skips this)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q chromium > "$LOG" 2>&1 \
  || { apt-get update -q >> "$LOG" 2>&1 && apt-get install -y -q chromium >> "$LOG" 2>&1; } \
  || give_up "apt-get could not install chromium (see $LOG)"
echo "install_chromium: chromium installed ($(command -v chromium || echo "not on PATH"))" >&2
