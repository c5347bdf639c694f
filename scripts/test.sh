#!/usr/bin/env bash
# Set up .venv from the repo's files and run the whole test suite (extra args go to pytest).
# Data tests read the public files through PARLAI_EMPATHY_MIRROR and skip, saying why,
# when it is unset. Browser tests use Debian's Chromium (scripts/install_chromium.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
bash scripts/install_chromium.sh
exec .venv/bin/pytest "$@"
