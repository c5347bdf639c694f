#!/usr/bin/env bash
# The seed paper's PEC experiment in one command (issue: persona-aware MoEL): label PEC with
# the emotion classifier, keep the seed's filter, train persona-aware MoEL and plain MoEL with
# the same budget over the 16 emotion groups, and write the seed's table with our rows.
# Needs PEC's hf_pec.zip (PARLAI_EMPATHY_MIRROR=<folder holding pec/hf_pec.zip>, or ParlAI's
# datapath already holding pec/); rerun the same command after an interruption: finished
# steps are skipped and training resumes from RUN_DIR/<model>/model.checkpoint.
#
#   PARLAI_EMPATHY_MIRROR=/path/to/mirror nohup bash recipes/persona_moel_pec.sh [RUN_DIR] &
#
# Variables (all optional):
#   CLASSIFIER       model file of the emotion classifier over the 32 ED emotions
#                    (default zoo:empathy/emotion_classifier_ed/model); its labels are mapped
#                    to the 16 groups by the generators (--emotion-groups 16)
#   MAX_TRAIN_STEPS  stop each generator after N updates (default: early stopping on valid
#                    ppl, validation every VSTEP=2000 updates, patience 3, as MoEL's recipe)
#   MODEL_ARGS       extra options of both generators (sizes, --embedding-file ...)
#   PERSONA_ARGS     extra options of persona-aware MoEL only (--persona single,
#                    --persona-attention-order persona_first, --persona-encoder-path ...)
#   EVAL_ARGS        extra options of the test evaluations (--num-examples N ...)
#   DATAPATH         ParlAI's --datapath;  LABEL_BATCHSIZE, EVAL_BATCHSIZE: batch sizes
#   PARLAI, PYTHON   the commands to use (default .venv/bin/parlai, .venv/bin/python)
# Output: RUN_DIR/seed_table.md (and the evaluation reports in RUN_DIR/eval/).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-runs/persona_moel_pec}"
CLASSIFIER="${CLASSIFIER:-zoo:empathy/emotion_classifier_ed/model}"
PARLAI="${PARLAI:-.venv/bin/parlai}"
PYTHON="${PYTHON:-.venv/bin/python}"
read -r -a MODEL_EXTRA <<< "${MODEL_ARGS:-}"
read -r -a PERSONA_EXTRA <<< "${PERSONA_ARGS:-}"
read -r -a EVAL_EXTRA <<< "${EVAL_ARGS:-}"
DATA=()
if [ -n "${DATAPATH:-}" ]; then DATA=(--datapath "$DATAPATH"); fi
PEC=(-t pec --pec-filter true)
EMOTIONS="$RUN_DIR/emotions.jsonl"
mkdir -p "$RUN_DIR/emotions" "$RUN_DIR/eval"

# 1. Emotion labels of every kept conversation (resumable; an existing file is kept).
if [ ! -f "$EMOTIONS" ]; then
  for SPLIT in train valid test; do
    if [ ! -f "$RUN_DIR/emotions/$SPLIT.jsonl" ]; then
      "$PARLAI" empathy_label_emotions -mf "$CLASSIFIER" "${PEC[@]}" -dt "$SPLIT" \
        -bs "${LABEL_BATCHSIZE:-64}" --out "$RUN_DIR/emotions/$SPLIT.jsonl" "${DATA[@]}"
    fi
  done
  cat "$RUN_DIR/emotions/"{train,valid,test}.jsonl > "$EMOTIONS.tmp"
  mv "$EMOTIONS.tmp" "$EMOTIONS"
fi

# 2. Both generators: same data, dictionary, seed, sizes and budget.
if [ ! -f "$RUN_DIR/model.dict" ]; then
  "$PARLAI" build_dict -m empathy/moel "${PEC[@]}" -df "$RUN_DIR/model.dict" "${DATA[@]}"
fi
TRAIN=("${PEC[@]}" --pec-emotion-file "$EMOTIONS" --emotion-groups 16 -df "$RUN_DIR/model.dict"
  --seed 1234 --batchsize 16 -vstep "${VSTEP:-2000}" -vp 3 -vmt ppl -vmm min
  --skip-generation true --save-every-n-secs 600 --log-every-n-secs 60 "${DATA[@]}"
  ${MAX_TRAIN_STEPS:+--max-train-steps "$MAX_TRAIN_STEPS"} "${MODEL_EXTRA[@]}")
"$PARLAI" train_model -m empathy/persona_moel -mf "$RUN_DIR/persona_moel/model" "${TRAIN[@]}" \
  "${PERSONA_EXTRA[@]}"
"$PARLAI" train_model -m empathy/moel -mf "$RUN_DIR/moel/model" "${TRAIN[@]}"

# 3. Test split, beam 5 and greedy, the same decoding for both.
for MODEL in persona_moel moel; do
  for INFERENCE in beam greedy; do
    "$PARLAI" eval_model -mf "$RUN_DIR/$MODEL/model" "${PEC[@]}" -dt test \
      --pec-emotion-file "$EMOTIONS" --inference "$INFERENCE" --beam-size 5 \
      --skip-generation false -bs "${EVAL_BATCHSIZE:-64}" "${DATA[@]}" "${EVAL_EXTRA[@]}" \
      --report-filename "$RUN_DIR/eval/${MODEL}_$INFERENCE.json"
  done
done

# 4. The seed's table, ours next to its numbers.
"$PYTHON" -m parlai_empathy.report.seed_pec --out "$RUN_DIR/seed_table.md" \
  --run "persona-aware MoEL=$RUN_DIR/eval/persona_moel" --run "MoEL=$RUN_DIR/eval/moel"
