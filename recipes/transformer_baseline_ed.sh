#!/usr/bin/env bash
# The baseline a ParlAI user would pick instead of MoEL: ParlAI's stock transformer generator
# (2 layers, 300-d; -m empathy/transformer_generator = ParlAI's transformer/generator with our
# dictionary class and metrics) on the same data view and with the same dictionary rules as
# recipes/moel_ed.sh, trained like MoEL to early stopping on valid ppl (validation every 1,000
# updates of 32, stop after 3 checks without a gain), so neither model is cut short: a fixed
# 55-minute budget (1,175 updates, under one epoch) left it far from converged.
# MAX_TRAIN_SECS=N caps the training time instead (ParlAI's --max-train-time, counted across
# resumes). Hours on one CPU thread: TRAIN_ONLY=1 and RESUME_FROM=FILE as in moel_ed.sh
# (every validation is checkpointed); rerun after an interruption and ParlAI resumes from
# RUN_DIR/model.checkpoint.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data bash recipes/transformer_baseline_ed.sh [RUN_DIR]
#
# Data: EmpatheticDialogues, --train-experiencer-only true (MoEL's 40,250 / 5,734 / 5,255
# examples), seed 1234. Dictionary: the papers' token space (--dict-tokenizer paper: lower-cased,
# contractions expanded, NLTK tokens; no size cap), as MoEL's recipe, so both ppl are per paper
# token. Then the test split is scored with the evaluation suite, beam 5 and greedy.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-runs/transformer_baseline_ed}"
PARLAI=.venv/bin/parlai
mkdir -p "$RUN_DIR"
. recipes/_resume.sh
restore_resume_point "$RUN_DIR"
if [ ! -f "$RUN_DIR/model.dict" ]; then
  "$PARLAI" build_dict -m empathy/transformer_generator -t empathetic_dialogues \
    --train-experiencer-only true --dict-tokenizer paper --dict-lower true \
    -df "$RUN_DIR/model.dict"
fi
"$PARLAI" train_model -m empathy/transformer_generator -t empathetic_dialogues \
  --dict-tokenizer paper --dict-lower true \
  --train-experiencer-only true -mf "$RUN_DIR/model" -df "$RUN_DIR/model.dict" --seed 1234 \
  --n-layers 2 --n-heads 2 --embedding-size 300 --ffn-size 600 --variant aiayn \
  --dropout 0.1 --text-truncate 256 --label-truncate 50 --batchsize 32 \
  --optimizer adam --learningrate 1e-3 --lr-scheduler invsqrt --warmup-updates 1000 \
  -vstep 1000 -vp 3 -vmt ppl -vmm min --skip-generation true --save-after-valid true \
  ${MAX_TRAIN_SECS:+--max-train-time "$MAX_TRAIN_SECS"} \
  --save-every-n-secs 600 --log-every-n-secs 60 2>&1 | tee -a "$RUN_DIR/train.log"
if [ -n "${TRAIN_ONLY:-}" ]; then exit 0; fi

for INFERENCE in beam greedy; do
  BEAM_SIZE=5; if [ "$INFERENCE" = greedy ]; then BEAM_SIZE=1; fi  # stock ParlAI insists
  "$PARLAI" empathy_report -mfs "$RUN_DIR/model" -t empathetic_dialogues \
    --train-experiencer-only true -dt test --inference "$INFERENCE" --beam-size "$BEAM_SIZE" \
    -bs 64 --out "$RUN_DIR/results_ed_test_$INFERENCE"
done
