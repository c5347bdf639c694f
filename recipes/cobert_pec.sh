#!/usr/bin/env bash
# CoBERT with personas on PEC (issue 12): pec:happy and pec:offmychest, each trained with
# in-batch negatives and evaluated on its test split, every example ranking its gold among
# the teacher's 100 candidates (gold + 99 responses of the same domain and split, drawn
# deterministically per conversation: parlai_empathy/data/pec.py), with the response
# speaker's personas (10 sentences). Reports hits@1/100, hits@10 and MRR, as the paper does,
# in RUN_DIR/results.md.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data nohup bash recipes/cobert_pec.sh [RUN_DIR] &
#
# The real numbers need the PEC release (hf_pec.zip, fetched through the mirror or its
# public URL by the pec teacher). PEC_ROOT=folder runs on a folder laid out like hf_pec
# instead (e.g. the test fixture: PEC_ROOT=tests/fixtures/pec/hf_pec MAX_TRAIN_STEPS=2),
# served to the teacher as a private mirror under RUN_DIR.
# Set-up as recipes/cobert_ed.sh (AdamW 2e-5, linear decay, batch 16, context 256, response
# 32, seed 1); knobs MAX_TRAIN_STEPS (default 20000), TRAIN_SECS, EVAL_EXAMPLES,
# VALID_EXAMPLES, ENCODER_PATH, UPDATE_FREQ; PARLAI and PYTHON name the commands (default:
# the .venv's).
set -euo pipefail
cd "$(dirname "$0")/.."
P="${PARLAI:-.venv/bin/parlai}"
PY="${PYTHON:-.venv/bin/python}"
RUN_DIR="${1:-runs/cobert_pec}"
STEPS="${MAX_TRAIN_STEPS:-20000}"
DATA=()
if [ -n "${PEC_ROOT:-}" ]; then
  [ -f "$PEC_ROOT/happy/train.txt" ] || { echo "PEC_ROOT=$PEC_ROOT has no happy/train.txt" >&2; exit 2; }
  rm -rf "$RUN_DIR/mirror" "$RUN_DIR/data"
  mkdir -p "$RUN_DIR/mirror/pec" "$RUN_DIR/data"
  "$PY" - "$PEC_ROOT" "$RUN_DIR/mirror/pec/hf_pec.zip" <<'PY'
import os, sys, zipfile
root, archive = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(archive, "w") as zf:
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            path = os.path.join(folder, name)
            zf.write(path, os.path.join("hf_pec", os.path.relpath(path, root)))
PY
  PARLAI_EMPATHY_MIRROR="$(cd "$RUN_DIR/mirror" && pwd)"
  export PARLAI_EMPATHY_MIRROR
  DATA=(-dp "$RUN_DIR/data")
fi
ENCODER=(${ENCODER_PATH:+--encoder-path "$ENCODER_PATH"})
ROWS=()
for DOMAIN in happy offmychest; do
  mkdir -p "$RUN_DIR/$DOMAIN"
  "$P" train_model -m empathy/cobert -t "pec:$DOMAIN" "${DATA[@]}" \
    -mf "$RUN_DIR/$DOMAIN/model" "${ENCODER[@]}" --seed 1 -bs 16 \
    --update-freq "${UPDATE_FREQ:-1}" -cands batch -ecands inline \
    --max-train-steps "$STEPS" ${TRAIN_SECS:+--max-train-time "$TRAIN_SECS"} \
    -vstep "${VALID_STEPS:-2000}" --validation-max-exs "${VALID_EXAMPLES:-1000}" \
    -vmt hits@1 -vmm max --short-final-eval true --save-every-n-secs 600 \
    --log-every-n-secs 60
  "$P" eval_model -mf "$RUN_DIR/$DOMAIN/model" -t "pec:$DOMAIN" "${DATA[@]}" \
    -dt test -ecands inline -bs 8 ${EVAL_EXAMPLES:+--num-examples "$EVAL_EXAMPLES"} \
    --report-filename "$RUN_DIR/eval_$DOMAIN.json"
  ROWS+=("CoBERT, personas, pec:$DOMAIN=$RUN_DIR/eval_$DOMAIN.json")
done
"$PY" -m parlai_empathy.ranking_table --out "$RUN_DIR/results.md" "${ROWS[@]}"
