#!/usr/bin/env bash
# MoEL on ESConv (emotional support), the official MoEL sizes, ESConv's 11 emotion types as
# the emotion labels (the agent switches to them for -t esconv: field `emotion_type`). Every
# supporter turn is a label, the preceding dialogue its context. Rerun after an interruption:
# ParlAI resumes from RUN_DIR/model.checkpoint.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data nohup bash recipes/moel_esconv.sh [RUN_DIR] &
#
# Seed 1234; validate every 500 steps (ESConv has 10,679 training examples, 668 batches of
# 16) and stop after 3 checks without a ppl gain; then score the test split, beam 5.
# MAX_TRAIN_STEPS=N stops after N updates instead (for a CPU budget). Longer than a session:
# every validation is checkpointed (--save-after-valid), TRAIN_ONLY=1 skips the test scoring,
# RESUME_FROM=FILE restores a resume point into an empty RUN_DIR (recipes/_resume.sh).
# MODEL_ARGS adds options to the training (last: they override the recipe's); PARLAI is the
# parlai command (default .venv/bin/parlai; scripts/device/train_recipes.sh sets its own).
# AGENT=empathy/mime trains MIME the same way (recipes/mime_esconv.sh), for a like-for-like
# comparison; the test split is scored with beam 5 (the papers' beam) and greedy.
# Noam warm-up: WARMUP_UPDATES, default 1000 here (the ED recipe keeps the official 8000):
# ESConv is a quarter of ED's size, and 8000 warm-up updates would be 12 ESConv epochs of a
# rising learning rate; the peak follows Noam's formula for the warm-up chosen.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-runs/moel_esconv}"
AGENT="${AGENT:-empathy/moel}"
PARLAI="${PARLAI:-.venv/bin/parlai}"
read -r -a MODEL_EXTRA <<< "${MODEL_ARGS:-}"
mkdir -p "$RUN_DIR"
. recipes/_resume.sh
restore_resume_point "$RUN_DIR"
if [ ! -f "$RUN_DIR/model.dict" ]; then
  "$PARLAI" build_dict -m "$AGENT" -t esconv -df "$RUN_DIR/model.dict"
fi
"$PARLAI" train_model -m "$AGENT" -t esconv -mf "$RUN_DIR/model" \
  -df "$RUN_DIR/model.dict" --seed 1234 --batchsize 16 \
  --warmup-updates "${WARMUP_UPDATES:-1000}" \
  -vstep 500 -vp 3 -vmt ppl -vmm min --skip-generation true \
  --save-after-valid true --save-every-n-secs 600 --log-every-n-secs 60 \
  ${MAX_TRAIN_STEPS:+--max-train-steps "$MAX_TRAIN_STEPS"} "${MODEL_EXTRA[@]}" 2>&1 \
  | tee -a "$RUN_DIR/train.log"
if [ -n "${TRAIN_ONLY:-}" ]; then exit 0; fi
"$PARLAI" empathy_report -mfs "$RUN_DIR/model" -t esconv -dt test --inference beam \
  --beam-size 5 -bs 64 --out "$RUN_DIR/results_esconv_test_beam5"
"$PARLAI" empathy_report -mfs "$RUN_DIR/model" -t esconv -dt test --inference greedy \
  -bs 64 --out "$RUN_DIR/results_esconv_test_greedy"
