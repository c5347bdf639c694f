#!/usr/bin/env bash
# Reinstall only this package into .venv after editing it (the tests use the installed copy).
# Serialised with a lock so parallel reinstalls never mix build folders.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 9>/tmp/parlai-empathy-install.lock
flock 9
rm -rf build
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall . 2>&1 \
  | grep -v -e '^WARNING: Location' -e 'is ignored: it is neither' || true
rm -rf build
