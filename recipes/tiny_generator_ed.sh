#!/usr/bin/env bash
# Reproduce zoo:empathy/tiny_generator_ed/model, the small demo model that the README's chat
# command uses until the research models land. About 25 minutes on 2 otherwise idle CPU
# cores; rerun it after an interruption and it resumes from its checkpoint.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data bash recipes/tiny_generator_ed.sh [RUN_DIR]
#
# Data: EmpatheticDialogues, MoEL's view (listener turns as labels:
# --train-experiencer-only true), train split; model selection on valid ppl; seed 1234.
# Then it packs the release archive (fp32) and evaluates it on the full test split.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-runs/tiny_generator_ed}"
PARLAI=.venv/bin/parlai
mkdir -p "$RUN_DIR"

"$PARLAI" train_model -m empathy/tiny_generator -t empathetic_dialogues \
  --train-experiencer-only true -mf "$RUN_DIR/model" --seed 1234 \
  --embedding-size 128 --ffn-size 256 --n-layers 2 --n-heads 2 \
  --dict-maxtokens 10000 --dict-tokenizer re --dict-lower true \
  --text-truncate 128 --label-truncate 32 --batchsize 32 \
  --optimizer adam --learningrate 1e-3 --lr-scheduler reduceonplateau \
  --max-train-steps 4000 -vstep 1000 --validation-max-exs 2000 \
  --validation-metric ppl --validation-metric-mode min --skip-generation true \
  --save-every-n-secs 120 2>&1 | tee -a "$RUN_DIR/train.log"

.venv/bin/python -m parlai_empathy.zoo pack --model-file "$RUN_DIR/model" \
  --name tiny_generator_ed --version v1 --out "$RUN_DIR/release"
