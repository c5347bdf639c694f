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
# batch 16, validate every 2000 steps and stop after 3 checks without a ppl gain.
# Word vectors: the packaged GloVe 6B 50-d (projected to 300); pass
# EMBEDDING_FILE=/path/glove.6B.300d.txt for the paper's 300-d vectors.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-runs/moel_ed}"
EMBEDDING_ARGS=()
if [ -n "${EMBEDDING_FILE:-}" ]; then EMBEDDING_ARGS=(--embedding-file "$EMBEDDING_FILE"); fi
mkdir -p "$RUN_DIR"
if [ ! -f "$RUN_DIR/model.dict" ]; then
  .venv/bin/parlai build_dict -m empathy/moel -t empathetic_dialogues \
    --train-experiencer-only true -df "$RUN_DIR/model.dict"
fi
exec .venv/bin/parlai train_model -m empathy/moel -t empathetic_dialogues \
  --train-experiencer-only true -mf "$RUN_DIR/model" -df "$RUN_DIR/model.dict" \
  --seed 1234 --batchsize 16 "${EMBEDDING_ARGS[@]}" \
  -vstep 2000 -vp 3 -vmt ppl -vmm min --skip-generation true \
  --save-every-n-secs 600 --log-every-n-secs 60
