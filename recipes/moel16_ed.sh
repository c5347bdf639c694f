#!/usr/bin/env bash
# MoEL over the seed paper's 16 emotion groups on EmpatheticDialogues (issue: persona-aware
# MoEL / 16 groups), with exactly recipes/moel_ed.sh's budget, seed and decoding, so that its
# row sits next to the 32-emotion MoEL's. Hours on 2 CPU cores: run it in the background;
# rerun the same command after an interruption and ParlAI resumes from the checkpoint.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data nohup bash recipes/moel16_ed.sh [RUN_DIR] [MOEL32_DIR] &
#
# Same as recipes/moel_ed.sh (ED, --train-experiencer-only true, seed 1234, batch 16, Noam
# warm-up 8000, validation every 2000 steps, patience 3 on ppl counted after 13,000 updates
# (BEST_AFTER=N changes that; 0: ParlAI's rule), beam 5 and greedy on the full
# test split) except --emotion-groups 16: 16 listeners + the shared one, the classifier over
# the 16 groups, ED's 32 labels mapped to their group (parlai_empathy.emotions). The packed
# release is moel16_ed-$RELEASE_VERSION (v1 is zoo:empathy/moel16_ed/model).
# MAX_TRAIN_STEPS=N stops after N updates (the 32-emotion run must use the same N);
# EMBEDDING_FILE as in moel_ed.sh; EVAL_ARGS adds options to the test evaluations
# (--num-examples N for a smoke run); MODEL_ARGS adds options to the training (last: they
# override the recipe's); DATAPATH is
# ParlAI's --datapath of every command. TRAIN_ONLY=1 and RESUME_FROM=FILE as in moel_ed.sh
# (every validation is checkpointed: --save-after-valid). With MOEL32_DIR (a finished
# recipes/moel_ed.sh run) the report also evaluates that model, so the two rows share one table.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-runs/moel16_ed}"
MOEL32_DIR="${2:-}"
VERSION="${RELEASE_VERSION:-v1}"
PARLAI="${PARLAI:-.venv/bin/parlai}"
PYTHON="${PYTHON:-.venv/bin/python}"
read -r -a EVAL_EXTRA <<< "${EVAL_ARGS:-}"
read -r -a MODEL_EXTRA <<< "${MODEL_ARGS:-}"
DATA=()
if [ -n "${DATAPATH:-}" ]; then DATA=(--datapath "$DATAPATH"); fi
EMBEDDING_ARGS=()
if [ -n "${EMBEDDING_FILE:-}" ]; then EMBEDDING_ARGS=(--embedding-file "$EMBEDDING_FILE"); fi
mkdir -p "$RUN_DIR"
. recipes/_resume.sh
restore_resume_point "$RUN_DIR"
if [ ! -f "$RUN_DIR/model.dict" ]; then
  "$PARLAI" build_dict -m empathy/moel -t empathetic_dialogues \
    --train-experiencer-only true -df "$RUN_DIR/model.dict" "${DATA[@]}"
fi
"$PARLAI" train_model -m empathy/moel --emotion-groups 16 -t empathetic_dialogues \
  --train-experiencer-only true -mf "$RUN_DIR/model" -df "$RUN_DIR/model.dict" \
  --seed 1234 --batchsize 16 "${EMBEDDING_ARGS[@]}" "${DATA[@]}" \
  -vstep "${VSTEP:-2000}" -vp 3 --best-after-updates "${BEST_AFTER:-13000}" \
  -vmt ppl -vmm min --skip-generation true \
  --save-after-valid true --save-every-n-secs 600 --log-every-n-secs 60 \
  ${MAX_TRAIN_STEPS:+--max-train-steps "$MAX_TRAIN_STEPS"} "${MODEL_EXTRA[@]}"
if [ -n "${TRAIN_ONLY:-}" ]; then exit 0; fi

# The release (fp16 weights, no optimizer state) and its numbers on the test split, beam 5 and
# greedy, measured on the released weights; the 32-emotion MoEL in the same report if given.
. recipes/_release.sh
pack_release moel16_ed "$RUN_DIR" "$VERSION"
MODELS="$RUN_DIR/release/unpacked/model"
if [ -n "$MOEL32_DIR" ]; then MODELS="$MOEL32_DIR/release/unpacked/model,$MODELS"; fi
for INFERENCE in beam greedy; do
  "$PARLAI" empathy_report -mfs "$MODELS" \
    -t empathetic_dialogues --train-experiencer-only true -dt test \
    --inference "$INFERENCE" --beam-size 5 -bs 64 "${EVAL_EXTRA[@]}" "${DATA[@]}" \
    --out "$RUN_DIR/results_ed_test_$INFERENCE"
done
