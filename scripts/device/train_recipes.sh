#!/usr/bin/env bash
# What a lent GPU runs: install the carried bundle (scripts/device/build_bundle.sh), check the
# environment, unpack ED and ESConv, then train the named recipes side by side on the one GPU,
# each exactly as `recipes/NAME.sh` trains here (TRAIN_ONLY=1: its flags, seed, dictionary and
# early stopping; the bundle's word-vector rows for a fresh run), continuing
# .device/resume/NAME.tar.gz when the bundle carries one. Then, for each run:
#   stopped by early stopping -> its fp16 release (zoo format, best validated weights), then,
#                                while time is left, its test reports, beam 5 and greedy
#                                (`parlai empathy_report`, as the recipe's tail)
#   stopped by the time budget -> a resume point (parlai_empathy.resume_point), to commit and
#                                continue here or on a later device
# recipes/cobert_*.sh (retrieval; the bundle built with COBERT=1) instead: CoBERT trained from
# the bundled untrained model (all-MiniLM-L6-v2 as fp16) for COBERT_STEPS updates (the linear
# schedule's horizon) or MAX_TRAIN_SECS, whichever ends first; its fp16 release with its chat
# candidates (the recipe's RELEASE_VERSION step), then, while time is left, the release's
# hits@1/10 and MRR on the 100-candidate test sets (`parlai eval_model`, as the recipe).
# $OUT gets the archives (split into 15 MiB parts), records.tar.gz (each run's opt,
# trainstats, train log and reports, and summary.txt) and run.log. docs/device_runs.md has the
# exact call.
#
#   OUT=/tmp/out bash scripts/device/train_recipes.sh moel16_ed mime_esconv
#
# Settings (environment):
#   MAX_TRAIN_SECS   training seconds each run may add (ParlAI's --max-train-time, set on top
#                    of a resumed run's own train_time; default 420)
#   DEADLINE_SECS    seconds after the start by which $OUT must be complete (default 560):
#                    reports that would run past it are cut, archives come first
#   REQUIRE_CUDA=1   fail at once when torch sees no GPU (use it on the device)
#   REHEARSAL_STEPS  without CUDA: updates each run adds (default 30); evaluations are short
#   RELEASE_VERSION  version of the packed releases (default v1)
#   COBERT_STEPS     CoBERT's updates (the linear schedule's horizon; default 20000)
#   COBERT_ARGS      options added to its training (e.g. --update-freq 4)
#   BUNDLE (.device), SITE (/tmp/site), WORK_DIR (/tmp/device_run), PYTHON (python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
: "${OUT:?set OUT to the folder whose files come back (the device sets it)}"
[ "$#" -gt 0 ] || { echo "usage: OUT=DIR bash $0 RECIPE [RECIPE...] (recipes/RECIPE.sh)"; exit 2; }
for name in "$@"; do
  [ -f "recipes/$name.sh" ] || { echo "recipes/$name.sh does not exist"; exit 2; }
done
PY="${PYTHON:-python3}"
BUNDLE="$(realpath "${BUNDLE:-.device}")"
SITE="${SITE:-/tmp/site}"
WORK="${WORK_DIR:-/tmp/device_run}"
MAX_TRAIN_SECS="${MAX_TRAIN_SECS:-420}"
DEADLINE_SECS="${DEADLINE_SECS:-560}"
REHEARSAL_STEPS="${REHEARSAL_STEPS:-30}"
VERSION="${RELEASE_VERSION:-v1}"
PART_BYTES=$((15 * 1024 * 1024))  # $OUT returns files of at most 16 MiB
OUT_BUDGET=$((60 * 1024 * 1024))  # and 64 MiB in all: the records and the log need the rest

mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
say() { echo "== [$(elapsed)s] $*"; echo "[$(elapsed)s] $*" >> "$WORK/summary.txt"; }
rm -rf "$WORK"
mkdir -p "$WORK"
echo "device run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(nproc) CPUs: $*" > "$WORK/summary.txt"

say "bundle check"
[ -f "$BUNDLE/MANIFEST.txt" ] || { echo "no bundle at $BUNDLE (scripts/device/build_bundle.sh)"; exit 1; }
WANT="$(awk '$1 == "source_fingerprint" {print $2}' "$BUNDLE/MANIFEST.txt")"
HAVE="$("$PY" scripts/device/source_fingerprint.py "$ROOT")"
if [ "$WANT" != "$HAVE" ]; then
  echo "the bundle's wheel was built from other sources than this checkout ($WANT != $HAVE):"
  echo "rerun scripts/device/build_bundle.sh (or ALLOW_STALE_BUNDLE=1)"
  [ "${ALLOW_STALE_BUNDLE:-0}" = 1 ] || exit 1
fi
(cd "$BUNDLE" && awk '$1 == "file" {print $4 "  " $2}' MANIFEST.txt | sha256sum --quiet -c -)

say "install"
if [ -e "$SITE" ]; then
  [ -f "$SITE/parlai_empathy.pth" ] || { echo "$SITE exists and is not ours: choose SITE=..."; exit 1; }
  rm -rf "$SITE"
fi
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" \
  "$BUNDLE"/wheels/*.whl 2>&1 | grep -v -e '^WARNING: Location' -e 'is ignored: it is neither' || true
[ -f "$SITE/parlai_empathy.pth" ] || { echo "install into $SITE failed"; exit 1; }
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" DEVICE_SITE="$SITE" PYTHONUNBUFFERED=1
# the recipes call $PARLAI and $PYTHON: both go through site_run.py (parlai_empathy.pth read)
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nexec "%s" "%s" parlai "$@"\n' "$PY" "$ROOT/scripts/device/site_run.py" > "$WORK/bin/parlai"
printf '#!/bin/sh\nif [ "$1" = -m ]; then shift; fi\nexec "%s" "%s" "$@"\n' "$PY" \
  "$ROOT/scripts/device/site_run.py" > "$WORK/bin/python"
chmod +x "$WORK/bin/parlai" "$WORK/bin/python"
export PARLAI="$WORK/bin/parlai" PYTHON="$WORK/bin/python"

say "environment"
CHECK_ARGS=()
[ "${REQUIRE_CUDA:-0}" = 1 ] && CHECK_ARGS=(--require-cuda)
"$PYTHON" scripts/device/check_env.py "${CHECK_ARGS[@]}" | tee -a "$WORK/summary.txt"
CUDA="$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))')"
EVAL_LIMIT=()
if [ "$CUDA" = 1 ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "REHEARSAL: no CUDA, $REHEARSAL_STEPS updates per run, short evaluations" \
    | tee -a "$WORK/summary.txt"
  EVAL_LIMIT=(--num-examples 32)
fi

say "data"
mkdir -p "$WORK/mirror" "$WORK/data"
extract() {  # ARCHIVE DIR, by Python's own tarfile/lzma: the image may have no xz program
  "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
    "$1" "$2"
}
for archive in ed esconv; do
  extract "$BUNDLE/data/$archive.tar.xz" "$WORK/mirror"
done
# the named word vectors are not there (no network): a run that needed them must fail here too
export PARLAI_EMPATHY_MIRROR="$WORK/mirror" PARLAI_DATAPATH="$WORK/data" \
  PARLAI_EMPATHY_VECTORS="$WORK/no_vectors"
read -r VECTORS VECTOR_ROWS < "$BUNDLE/data/VECTORS"
# build each task once, before the runs start side by side
"$PARLAI" display_data -t empathetic_dialogues --train-experiencer-only true -n 1 > /dev/null
"$PARLAI" display_data -t esconv -n 1 > /dev/null
case " $* " in *" cobert_ed "*)
  "$PARLAI" display_data -t empathy_ranking:ed --train-experiencer-only true -n 1 > /dev/null ;;
esac

task_args() {  # the task a recipe trains on (its name's suffix), as its report names it
  case "$1" in
    *_ed) echo "-t empathetic_dialogues --train-experiencer-only true" ;;
    *_esconv) echo "-t esconv" ;;
    *) echo "train_recipes: no task known for $1" >&2; return 1 ;;
  esac
}

trainstats() {  # KEY of RUN_DIR's latest trainstats (the checkpoint's when it is newer)
  "$PY" - "$1" "$2" <<'EOF'
import json, os, sys
run, key = sys.argv[1], sys.argv[2]
paths = [os.path.join(run, f) for f in ("model.trainstats", "model.checkpoint.trainstats")]
stats = [json.load(open(p)) for p in paths if os.path.isfile(p)]
stats.sort(key=lambda s: s.get("train_steps", 0))
print(stats[-1].get(key, 0) if stats else 0)
EOF
}

run_recipe() {  # NAME: train, then release + reports, or a resume point
  local name="$1" run="$WORK/$1" log="$WORK/$1/train.out" budget resumed=0
  mkdir -p "$run"
  if [ -f "$BUNDLE/resume/$name.tar.gz" ]; then
    "$PYTHON" -m parlai_empathy.resume_point unpack "$BUNDLE/resume/$name.tar.gz" \
      --model-file "$run/model"
    resumed=1
  elif [ "$(task_args "$name")" != "-t esconv" ]; then
    cp "$BUNDLE/data/model.dict" "$run/model.dict"  # the papers' ED dictionary, as build_dict
    if [ "$VECTOR_ROWS" = none ]; then
      say "$name: a fresh run needs word vectors; the bundle has none (built with VECTORS=none)"
      return 1
    fi
  fi
  local args=()
  if [ "$CUDA" = 1 ]; then
    budget=$("$PY" -c 'import sys; print(int(float(sys.argv[1]) + float(sys.argv[2])))' \
      "$(trainstats "$run" train_time)" "$MAX_TRAIN_SECS")
    # a checkpoint every 30 s: a run the budget stops loses at most that much training
    args=(--max-train-time "$budget" --save-every-n-secs 30)
  else
    args=(--max-train-steps $(( $(trainstats "$run" train_steps) + REHEARSAL_STEPS ))
          --validation-max-exs 64 --short-final-eval true)
  fi
  say "$name: train (resumed $resumed, ${args[*]})"
  local embedding=()
  [ "$resumed" = 0 ] && embedding=(EMBEDDING_FILE="$BUNDLE/data/$VECTOR_ROWS")
  local rc=0
  env TRAIN_ONLY=1 MODEL_ARGS="${args[*]}" "${embedding[@]}" \
    bash "recipes/$name.sh" "$run" > "$log" 2>&1 || rc=$?
  tail -25 "$log"
  if [ "$rc" != 0 ]; then say "$name: training failed (rc $rc)"; return 1; fi
  if [ "$resumed" = 0 ] && [ -f "$run/model.opt" ]; then
    # the carried rows are the named source's own (build_bundle checks them equal): the
    # files name the source, as a run here would
    "$PY" - "$VECTORS" "$run"/model*.opt <<'EOF'
import json, sys
for path in sys.argv[2:]:
    opt = json.load(open(path))
    if opt.get("embedding_file"):
        opt["embedding_file"] = sys.argv[1]
        json.dump(opt, open(path, "w"), indent=4, sort_keys=True)
EOF
  fi
  local updates impatience patience
  updates=$(trainstats "$run" train_steps)
  impatience=$(trainstats "$run" impatience)
  patience=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["validation_patience"])' \
    "$run/model.opt")
  if [ "$impatience" -ge "$patience" ] || [ "$CUDA" != 1 ]; then
    say "$name: stopped at $updates updates (impatience $impatience of $patience): release"
    "$PYTHON" -m parlai_empathy.zoo pack --model-file "$run/model" --name "$name" \
      --version "$VERSION" --out "$run/release" --fp16 > "$run/pack.txt"
    echo "$run/release/$name-$VERSION.tar.gz" > "$run/ARCHIVE"
    local inference
    for inference in beam greedy; do
      local left=$(( DEADLINE_SECS - 40 - $(elapsed) ))
      if [ "$left" -lt 30 ]; then say "$name: no time left for the $inference report"; continue; fi
      say "$name: $inference report (at most ${left}s)"
      # shellcheck disable=SC2046
      timeout "$left" "$PARLAI" empathy_report -mfs "$run/model" $(task_args "$name") -dt test \
        --inference "$inference" --beam-size 5 -bs 64 "${EVAL_LIMIT[@]}" \
        --out "$run/results_test_$inference" > "$run/report_$inference.out" 2>&1 \
        || say "$name: $inference report cut or failed (rc $?)"
    done
  else
    say "$name: time budget spent at $updates updates (impatience $impatience of $patience): resume point"
    "$PYTHON" -m parlai_empathy.resume_point pack --model-file "$run/model" \
      --out "$run/$name.resume.tar.gz" > "$run/pack.txt"
    echo "$run/$name.resume.tar.gz" > "$run/ARCHIVE"
  fi
  say "$name: done"
}

run_ranker() {  # NAME (cobert_ed): train from the bundled untrained CoBERT, release, evaluate
  local name="$1" run="$WORK/$1" log="$WORK/$1/train.out"
  [ "$name" = cobert_ed ] || { say "$name: only cobert_ed runs here"; return 1; }
  [ -f "$BUNDLE/init/cobert.tar.gz" ] || {
    say "$name: the bundle has no init/cobert.tar.gz (build it with COBERT=1)"; return 1; }
  mkdir -p "$run/init"
  extract "$BUNDLE/init/cobert.tar.gz" "$run/init"
  local args=(${COBERT_ARGS:-}) eval_limit=() steps="${COBERT_STEPS:-20000}"
  if [ "$CUDA" = 1 ]; then
    args+=(--max-train-time "$MAX_TRAIN_SECS" --save-every-n-secs 60)
  else
    steps="$REHEARSAL_STEPS"
    args+=(--validation-max-exs 16)
    eval_limit=(--num-examples 16)
  fi
  say "$name: train ($steps updates at most, ${args[*]})"
  local rc=0
  env TRAIN_ONLY=1 ROWS=cobert MAX_TRAIN_STEPS="$steps" RELEASE_VERSION="$VERSION" \
    INIT_MODEL="$run/init/model" MODEL_ARGS="${args[*]}" \
    bash "recipes/$name.sh" "$run" > "$log" 2>&1 || rc=$?
  tail -25 "$log"
  if [ "$rc" != 0 ]; then say "$name: training or release failed (rc $rc)"; return 1; fi
  local archive="$run/release/$name-$VERSION.tar.gz"
  echo "$archive" > "$run/ARCHIVE"
  say "$name: $(trainstats "$run/cobert" train_steps) updates, released"
  mkdir -p "$run/release/unpacked"
  extract "$archive" "$run/release/unpacked"
  local left=$(( DEADLINE_SECS - 40 - $(elapsed) ))
  if [ "$left" -lt 30 ]; then say "$name: no time left for the test evaluation"; return 0; fi
  say "$name: test evaluation of the release (at most ${left}s)"
  timeout "$left" "$PARLAI" eval_model -mf "$run/release/unpacked/model" \
    -t empathy_ranking:ed --train-experiencer-only true -dt test -ecands inline -bs 64 \
    "${eval_limit[@]}" --report-filename "$run/results_test_cobert.json" \
    > "$run/report_test.out" 2>&1 || say "$name: test evaluation cut or failed (rc $?)"
  say "$name: done"
}

PIDS=()
for name in "$@"; do
  case "$name" in
    cobert_*) run_ranker "$name" & ;;
    *) run_recipe "$name" & ;;
  esac
  PIDS+=($!)
done
FAILED=0
for pid in "${PIDS[@]}"; do wait "$pid" || FAILED=1; done

say "out"
USED=0
for name in "$@"; do
  [ -f "$WORK/$name/ARCHIVE" ] || continue
  archive="$(cat "$WORK/$name/ARCHIVE")"
  bytes=$(stat -c %s "$archive")
  if [ $(( USED + bytes )) -gt "$OUT_BUDGET" ]; then
    say "$name: $(basename "$archive") ($bytes bytes) left out: \$OUT's 64 MiB are spent"
    continue
  fi
  USED=$(( USED + bytes ))
  split -b "$PART_BYTES" -d -a 1 "$archive" "$OUT/$(basename "$archive").part"
  echo "archive $(basename "$archive") bytes $bytes sha256 $(sha256sum "$archive" | cut -d' ' -f1)" \
    >> "$WORK/summary.txt"
done
echo "cuda $CUDA, rejoin: cat NAME.part* > NAME (parts in name order)" >> "$WORK/summary.txt"
say "total"
(cd "$WORK" && find . -maxdepth 3 \( -name 'model*.opt' -o -name 'model*.trainstats' \
   -o -name 'train.out' -o -name 'train.log' -o -name 'report_*.out' -o -name 'pack.txt' \
   -o -name 'results_test_*' -o -name summary.txt \) -print0 \
   | tar --null -czf "$OUT/records.tar.gz" --files-from -)
ls -la "$OUT"
[ "$(find "$OUT" -type f | wc -l)" -le 8 ] || echo "WARNING: more than 8 files in \$OUT; only 8 come back"
exit "$FAILED"
