#!/usr/bin/env bash
# How a trained MoEL decodes on ED *valid*: the papers' beam rule against ParlAI's, and greedy,
# on the same examples, so that a decoding choice is made on valid and never on test.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data bash recipes/moel_ed_decoding.sh MODEL_FILE OUT_DIR
#
# MODEL_FILE: a MoEL model file (zoo:empathy/moel_ed/model works). NUM_EXAMPLES (default 1000:
# the first valid examples, rounded up to whole batches of 64 by ParlAI, so 1,024; -1 for all
# 5,736) keeps it to about 4 minutes per setting on one CPU thread.
# Writes OUT_DIR/<setting>.json (ParlAI's report) and prints one table over the settings.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL_FILE="${1:?usage: moel_ed_decoding.sh MODEL_FILE OUT_DIR}"
OUT_DIR="${2:?usage: moel_ed_decoding.sh MODEL_FILE OUT_DIR}"
NUM_EXAMPLES="${NUM_EXAMPLES:-1000}"
mkdir -p "$OUT_DIR"
declare -A SETTINGS=(
  [beam5_first_top]="--inference beam --beam-size 5 --beam-selection first_top"
  [beam5_rescored_lp0]="--inference beam --beam-size 5 --beam-selection rescored --beam-length-penalty 0"
  [beam5_rescored_lp0.65]="--inference beam --beam-size 5 --beam-selection rescored --beam-length-penalty 0.65"
  [beam5_first_top_block3]="--inference beam --beam-size 5 --beam-selection first_top --beam-block-ngram 3"
  [greedy]="--inference greedy"
)
for NAME in "${!SETTINGS[@]}"; do
  if [ -f "$OUT_DIR/$NAME.json" ]; then continue; fi  # rerun skips what is done
  # shellcheck disable=SC2086
  .venv/bin/parlai eval_model -mf "$MODEL_FILE" -t empathetic_dialogues \
    --train-experiencer-only true -dt valid --num-examples "$NUM_EXAMPLES" -bs 64 \
    ${SETTINGS[$NAME]} --metrics ppl,emotion_acc,mbleu,bleu4,dist1,dist2,rougeL,resp_len \
    --report-filename "$OUT_DIR/$NAME.tmp.json" > "$OUT_DIR/$NAME.log" 2>&1
  mv "$OUT_DIR/$NAME.tmp.json" "$OUT_DIR/$NAME.json"
done
.venv/bin/python - "$OUT_DIR" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
keys = ["exs", "mbleu", "bleu4", "dist1", "dist2", "rougeL", "resp_len"]
print("| setting | " + " | ".join(keys) + " |")
print("|---|" + "---:|" * len(keys))
for path in sorted(out.glob("*.json")):
    if path.name.endswith(".tmp.json"):
        continue
    report = json.loads(path.read_text())["report"]
    cells = [f"{report[k]:.0f}" if k == "exs" else f"{report[k]:.2f}" for k in keys]
    print(f"| {path.stem} | " + " | ".join(cells) + " |")
EOF
