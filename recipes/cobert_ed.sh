#!/usr/bin/env bash
# CoBERT on EmpatheticDialogues (issue 12) and the baselines on the same 100-candidate sets:
# one Markdown table RUN_DIR/results.md (hits@1/100, hits@10, MRR on the full test split).
#
#   PARLAI_EMPATHY_MIRROR=../shared/data nohup bash recipes/cobert_ed.sh [RUN_DIR] &
#
# Data: ED, MoEL's view (--train-experiencer-only true), trained with in-batch negatives
# (-cands batch). Evaluation: -t empathy_ranking:ed -dt test, each example ranking its gold
# response among 100 (gold + 99 responses of the test split, drawn deterministically per
# example: parlai_empathy/data/ranking.py), -ecands inline for every row.
# Set-up (ANCHORS.md, PEC's CoBERT_config.json): AdamW lr 2e-5, linear decay without warm-up,
# batch 16 (the original accumulates 4 batches: UPDATE_FREQ=4), context 256 tokens, response
# 32, gradient clip 1, seed 1. Encoder: the packaged all-MiniLM-L6-v2, or ENCODER_PATH=folder
# (bert-base-uncased as in the paper).
# Budget knobs: MAX_TRAIN_STEPS (default 20000, the linear schedule's horizon), TRAIN_SECS
# (a wall-clock cap, the same for CoBERT and the bi-encoder), EVAL_EXAMPLES (evaluate only
# the first N test examples: smoke runs). The trained model is the last state (the learning
# rate decays to 0 at the horizon): VALID_STEPS=N validates every N updates on
# VALID_EXAMPLES (1000) valid examples and keeps the best state instead (ParlAI never
# validates the updates after the last check, so a cap can leave them out).
# INIT_MODEL=FILE starts CoBERT from that model's weights (scripts/device/train_recipes.sh:
# the bundled untrained CoBERT, fp16 MiniLM); MODEL_ARGS adds options to CoBERT's training
# (last: they override the recipe's). TRAIN_ONLY=1 trains CoBERT (and packs the release when
# RELEASE_VERSION is set) and stops: no evaluation, no other row. PARLAI and PYTHON name the
# commands (default: the .venv's).
# ROWS (default "cobert cosine tfidf biencoder"): the rows to compute; a row whose report
# exists is not computed again, and the table has every row with a report.
# RELEASE_VERSION=vN also packs the zoo release with the training responses as its fixed
# candidates (RELEASE_CANDIDATES lines, default 500: MiniLM fp16 weights are ~43 MB and each
# candidate adds ~13 kB of fp16 encodings; the archive must stay under 50 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET="${DATASET:-ed}"  # recipes/cobert_esconv.sh sets esconv
RUN_DIR="${1:-runs/cobert_$DATASET}"
STEPS="${MAX_TRAIN_STEPS:-20000}"
case "$DATASET" in
  ed) TASK=(-t empathy_ranking:ed --train-experiencer-only true) ;;
  esconv) TASK=(-t empathy_ranking:esconv) ;;
  *) echo "DATASET must be ed or esconv, got $DATASET" >&2; exit 2 ;;
esac
EVAL_DATA=(-t "empathy_ranking:$DATASET" -dt test ${EVAL_EXAMPLES:+--num-examples "$EVAL_EXAMPLES"})
EVAL=("${EVAL_DATA[@]}" -ecands inline)
BUDGET=(--max-train-steps "$STEPS" ${TRAIN_SECS:+--max-train-time "$TRAIN_SECS"})
VALID=(--validation-max-exs "${VALID_EXAMPLES:-1000}" -vmt hits@1 -vmm max --short-final-eval true)
if [ -n "${VALID_STEPS:-}" ]; then VALID+=(-vstep "$VALID_STEPS"); fi
ROWS=" ${ROWS:-cobert cosine tfidf biencoder} "
row() { [[ "$ROWS" == *" $1 "* ]] && [ ! -e "$RUN_DIR/eval_$1.json" ]; }
ENCODER=(${ENCODER_PATH:+--encoder-path "$ENCODER_PATH"})
mkdir -p "$RUN_DIR/cobert" "$RUN_DIR/biencoder"
P="${PARLAI:-.venv/bin/parlai}"
PY="${PYTHON:-.venv/bin/python}"
read -r -a MODEL_EXTRA <<< "${MODEL_ARGS:-}"

release() {  # the zoo release: the trained CoBERT with the training responses as candidates
  [ -n "${RELEASE_VERSION:-}" ] && [ "$DATASET" = ed ] || return 0
  # the release's chat candidates: the first distinct training responses
  "$PY" - "$RUN_DIR/release_cands.txt" "${RELEASE_CANDIDATES:-500}" <<'PYCODE'
import sys
from parlai.core.params import ParlaiParser
from parlai.core.teachers import create_task_agent_from_taskname
out, wanted = sys.argv[1], int(sys.argv[2])
opt = ParlaiParser(True, False).parse_args(
    ["-t", "empathetic_dialogues", "--train-experiencer-only", "true", "-dt", "train:ordered"])
teacher = create_task_agent_from_taskname(opt)[0]
seen = {}
while len(seen) < wanted and not teacher.epoch_done():
    for label in teacher.act().get("labels", []):
        if label.strip():
            seen.setdefault(label.strip(), None)
with open(out, "w", encoding="utf-8") as f:
    f.writelines(line + "\n" for line in list(seen)[:wanted])
PYCODE
  "$PY" -m parlai_empathy.zoo pack --model-file "$RUN_DIR/cobert/model" \
    --name cobert_ed --version "$RELEASE_VERSION" --out "$RUN_DIR/release" --fp16 \
    --candidates "$RUN_DIR/release_cands.txt"
}

# 1. CoBERT
if row cobert; then
$P train_model -m empathy/cobert "${TASK[@]}" -mf "$RUN_DIR/cobert/model" "${ENCODER[@]}" \
  ${INIT_MODEL:+--init-model "$INIT_MODEL"} --seed 1 -bs 16 \
  --update-freq "${UPDATE_FREQ:-1}" -cands batch -ecands inline \
  "${BUDGET[@]}" "${VALID[@]}" --save-every-n-secs 600 --log-every-n-secs 60 \
  "${MODEL_EXTRA[@]}"
if [ -z "${TRAIN_ONLY:-}" ]; then
$P eval_model -mf "$RUN_DIR/cobert/model" "${EVAL[@]}" -bs 8 \
  --report-filename "$RUN_DIR/eval_cobert.json"
fi
fi
if [ -n "${TRAIN_ONLY:-}" ]; then release; exit 0; fi

# 2. the same encoder untrained: cosine of mean-pooled outputs
if row cosine; then
$P eval_model -m empathy/cobert --scorer cosine "${ENCODER[@]}" "${EVAL[@]}" -bs 8 \
  --report-filename "$RUN_DIR/eval_cosine.json"
fi

# 3. TF-IDF over each example's candidates
if row tfidf; then
  $P eval_model -m empathy/tfidf_ranker "${EVAL_DATA[@]}" --report-filename "$RUN_DIR/eval_tfidf.json"
fi

# 4. ParlAI's stock bi-encoder (a small transformer from scratch), same data and budget
if row biencoder; then
$P train_model -m transformer/biencoder "${TASK[@]}" -mf "$RUN_DIR/biencoder/model" \
  --seed 1 -bs 32 -cands batch -ecands inline --n-layers 2 --n-heads 4 \
  --embedding-size 256 --ffn-size 1024 --dict-tokenizer bpe --dict-lower true \
  --text-truncate 256 --label-truncate 32 --optimizer adamax -lr 5e-4 --warmup-updates 100 \
  --reduction-type mean --share-encoders false "${BUDGET[@]}" "${VALID[@]}" \
  --save-every-n-secs 600 --log-every-n-secs 60
$P eval_model -mf "$RUN_DIR/biencoder/model" "${EVAL[@]}" -bs 8 \
  --report-filename "$RUN_DIR/eval_biencoder.json"
fi

TABLE=()
for ROW in "CoBERT (fine-tuned)=cobert" "encoder, no fine-tuning (cosine)=cosine" \
    "TF-IDF=tfidf" "transformer/biencoder (ParlAI)=biencoder"; do
  REPORT="$RUN_DIR/eval_${ROW##*=}.json"
  if [ -e "$REPORT" ]; then TABLE+=("${ROW%=*}=$REPORT"); fi
done
"$PY" -m parlai_empathy.ranking_table --out "$RUN_DIR/results.md" "${TABLE[@]}"

release
