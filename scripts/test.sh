#!/usr/bin/env bash
# Set up .venv from the repo's files and run the whole test suite (extra args go to pytest),
# in parallel on the machine's cores (below).
#
#   bash scripts/test.sh [PYTEST ARGS]       e.g. bash scripts/test.sh tests/test_chat.py -q
#
# * Data tests read the public files through PARLAI_EMPATHY_MIRROR (a folder:
#   python -m parlai_empathy.mirror_fetch DIR fills one) and skip, saying why, when it is unset.
# * Browser tests need Chromium. Run as root on a system with apt-get, this script installs
#   Debian's chromium with apt-get, and says so first (PARLAI_EMPATHY_NO_APT=1: never).
#   As any other user it installs nothing system-wide, and the browser tests skip with the
#   reason, unless PARLAI_EMPATHY_REQUIRE_BROWSER=1 (CI), where a missing browser fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
bash scripts/install_chromium.sh
# One pytest-xdist worker per CPU core, at most 4 (PYTEST_WORKERS=N sets it; 0: one process),
# a file's tests on one worker (their module fixtures are built once).
WORKERS="${PYTEST_WORKERS:-$(nproc 2>/dev/null || echo 1)}"
if [ "$WORKERS" -gt 4 ]; then WORKERS=4; fi
exec .venv/bin/pytest -n "$WORKERS" --dist loadfile "$@"
