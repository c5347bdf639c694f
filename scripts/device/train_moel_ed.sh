#!/usr/bin/env bash
# What a lent GPU runs: install the carried bundle (scripts/device/build_bundle.sh), check
# the environment, build ED from the carried CSVs, train MoEL on ED with recipes/moel_ed.sh's
# settings for a wall-clock budget, pack the zoo release (fp16) and put into $OUT everything
# needed to commit and score it here. docs/device_runs.md has the exact device call.
#
#   OUT=/tmp/out bash scripts/device/train_moel_ed.sh        # on the device: REQUIRE_CUDA=1
#
# Without CUDA it is a rehearsal: REHEARSAL_STEPS updates (default 30) and short final
# evaluations, everything else the same. Settings (environment):
#   MAX_TRAIN_SECS   GPU training budget, ParlAI's --max-train-time (default 420)
#   MAX_TRAIN_STEPS  optional cap on updates
#   REQUIRE_CUDA=1   fail at once when torch sees no GPU (use it on the device)
#   AGENT            -m (default empathy/moel); RELEASE_NAME (moel_ed), RELEASE_VERSION (v4)
#   EMBEDDING_FILE   default: the bundle's GloVe rows; empty: pass no --embedding-file
#   EXTRA_ARGS       more train_model flags (word-split)
#   BUNDLE (.device), SITE (/tmp/site), WORK_DIR (/tmp/device_run), PYTHON (python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
: "${OUT:?set OUT to the folder whose files come back (the device sets it)}"
PY="${PYTHON:-python3}"
BUNDLE="$(realpath "${BUNDLE:-.device}")"
SITE="${SITE:-/tmp/site}"
WORK="${WORK_DIR:-/tmp/device_run}"
AGENT="${AGENT:-empathy/moel}"
RELEASE_NAME="${RELEASE_NAME:-moel_ed}"
RELEASE_VERSION="${RELEASE_VERSION:-v4}"
MAX_TRAIN_SECS="${MAX_TRAIN_SECS:-420}"
REHEARSAL_STEPS="${REHEARSAL_STEPS:-30}"
SUBSET_GLOVE="$BUNDLE/data/glove_6b_50d_ed.txt.gz"
EMBEDDING_FILE="${EMBEDDING_FILE-$SUBSET_GLOVE}"
PART_BYTES=$((15 * 1024 * 1024))  # $OUT returns files of at most 16 MiB

mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
T0=$(date +%s)
PHASES=()
phase() { PHASES+=("$1 $(( $(date +%s) - T0 ))s"); echo "== [$(( $(date +%s) - T0 ))s] $1"; }
summary() {
  { echo "phases (seconds since start): ${PHASES[*]}"; echo "total $(( $(date +%s) - T0 ))s"; } \
    >> "$OUT/summary.txt"
}
trap summary EXIT
echo "device run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(nproc) CPUs" > "$OUT/summary.txt"

phase "bundle check"
[ -f "$BUNDLE/MANIFEST.txt" ] || { echo "no bundle at $BUNDLE (scripts/device/build_bundle.sh)"; exit 1; }
WANT="$(awk '$1 == "source_fingerprint" {print $2}' "$BUNDLE/MANIFEST.txt")"
HAVE="$("$PY" scripts/device/source_fingerprint.py "$ROOT")"
if [ "$WANT" != "$HAVE" ]; then
  echo "the bundle's wheel was built from other sources than this checkout ($WANT != $HAVE):"
  echo "rerun scripts/device/build_bundle.sh (or ALLOW_STALE_BUNDLE=1)"
  [ "${ALLOW_STALE_BUNDLE:-0}" = 1 ] || exit 1
fi
(cd "$BUNDLE" && awk '$1 == "file" {print $4 "  " $2}' MANIFEST.txt | sha256sum --quiet -c -)

phase "install"
if [ -e "$SITE" ]; then
  [ -f "$SITE/parlai_empathy.pth" ] || { echo "$SITE exists and is not ours: choose SITE=..."; exit 1; }
  rm -rf "$SITE"
fi
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" \
  "$BUNDLE"/wheels/*.whl 2>&1 | grep -v -e '^WARNING: Location' -e 'is ignored: it is neither' || true
[ -f "$SITE/parlai_empathy.pth" ] || { echo "install into $SITE failed"; exit 1; }
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" DEVICE_SITE="$SITE" PYTHONUNBUFFERED=1
RUNPY=("$PY" "$ROOT/scripts/device/site_run.py")

phase "environment"
CHECK_ARGS=()
[ "${REQUIRE_CUDA:-0}" = 1 ] && CHECK_ARGS=(--require-cuda)
"${RUNPY[@]}" scripts/device/check_env.py "${CHECK_ARGS[@]}" | tee -a "$OUT/summary.txt"
CUDA="$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))')"
if [ "$CUDA" = 1 ]; then
  BUDGET=(--max-train-time "$MAX_TRAIN_SECS")
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "REHEARSAL: no CUDA, $REHEARSAL_STEPS updates and short final evaluations" \
    | tee -a "$OUT/summary.txt"
  BUDGET=(--max-train-steps "$REHEARSAL_STEPS" --validation-max-exs 64 --short-final-eval true)
fi
[ -n "${MAX_TRAIN_STEPS:-}" ] && BUDGET+=(--max-train-steps "$MAX_TRAIN_STEPS")

phase "data"
rm -rf "$WORK"
mkdir -p "$WORK/mirror" "$WORK/data"
# Python's own lzma/tarfile: the image may have no xz program
"$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
  "$BUNDLE/data/ed.tar.xz" "$WORK/mirror"
export PARLAI_EMPATHY_MIRROR="$WORK/mirror" PARLAI_DATAPATH="$WORK/data"
RUN_DIR="$WORK/$RELEASE_NAME"
mkdir -p "$RUN_DIR"
cp "$BUNDLE/data/model.dict" "$RUN_DIR/model.dict"  # the papers' dictionary, built by build_bundle
EMBEDDING_ARGS=()
[ -n "$EMBEDDING_FILE" ] && EMBEDDING_ARGS=(--embedding-file "$EMBEDDING_FILE")

phase "train"
# recipes/moel_ed.sh's settings; the agent's defaults give the official sizes and schedule
# shellcheck disable=SC2086
"${RUNPY[@]}" parlai train_model -m "$AGENT" -t empathetic_dialogues \
  --train-experiencer-only true -mf "$RUN_DIR/model" -df "$RUN_DIR/model.dict" \
  --seed 1234 --batchsize 16 "${EMBEDDING_ARGS[@]}" \
  -vstep 2000 -vp 3 -vmt ppl -vmm min --skip-generation true \
  --save-every-n-secs 600 --log-every-n-secs 30 "${BUDGET[@]}" ${EXTRA_ARGS:-}

phase "pack"
if [ "$EMBEDDING_FILE" = "$SUBSET_GLOVE" ]; then
  # the carried rows are the packaged GloVe's own (build_bundle checks them equal): the
  # release names the packaged vectors, as a run here would
  "$PY" - "$RUN_DIR/model.opt" <<'EOF'
import json, sys
path = sys.argv[1]
opt = json.load(open(path))
opt["embedding_file"] = "glove-6b-50d"
json.dump(opt, open(path, "w"), indent=4, sort_keys=True)
EOF
fi
"${RUNPY[@]}" parlai_empathy.zoo pack --model-file "$RUN_DIR/model" --name "$RELEASE_NAME" \
  --version "$RELEASE_VERSION" --out "$RUN_DIR/release" --fp16 | tee "$RUN_DIR/pack.txt"
ARCHIVE="$RUN_DIR/release/$RELEASE_NAME-$RELEASE_VERSION.tar.gz"
# the release must load: unpack it and build the agent from it on the CPU
mkdir -p "$RUN_DIR/unpacked"
"$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
  "$ARCHIVE" "$RUN_DIR/unpacked"
"${RUNPY[@]}" parlai display_model -mf "$RUN_DIR/unpacked/model" -t empathetic_dialogues \
  --train-experiencer-only true -dt valid -n 2 -bs 1 --no-cuda --skip-generation false \
  --inference greedy > "$RUN_DIR/display_model.txt" 2>&1 \
  || { tail -30 "$RUN_DIR/display_model.txt"; echo "the packed release does not load"; exit 1; }
tail -12 "$RUN_DIR/display_model.txt"

phase "out"
BYTES=$(stat -c %s "$ARCHIVE")
if [ "$BYTES" -gt "$PART_BYTES" ]; then
  split -b "$PART_BYTES" -d -a 2 "$ARCHIVE" "$OUT/$(basename "$ARCHIVE").part"
else
  cp "$ARCHIVE" "$OUT/"
fi
cp "$RUN_DIR/model.opt" "$RUN_DIR/model.trainstats" "$OUT/"
{
  echo "release $(basename "$ARCHIVE") bytes $BYTES sha256 $(sha256sum "$ARCHIVE" | cut -d' ' -f1)"
  (cd "$OUT" && ls "$(basename "$ARCHIVE")"* | while read -r f; do
     echo "  file $f bytes $(stat -c %s "$f") sha256 $(sha256sum "$f" | cut -d' ' -f1)"; done)
  echo "rejoin: cat $(basename "$ARCHIVE").part* > $(basename "$ARCHIVE") (parts in name order)"
  echo "cuda $CUDA agent $AGENT budget ${BUDGET[*]}"
  for split in valid test; do
    echo "final $split report:"; cat "$RUN_DIR/model.$split" 2>/dev/null || echo "(none)"
  done
} >> "$OUT/summary.txt"
FILES=$(find "$OUT" -type f | wc -l)
[ "$FILES" -le 8 ] || echo "WARNING: $FILES files in \$OUT; only 8 come back"
phase "done"
