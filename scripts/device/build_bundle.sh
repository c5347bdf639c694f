#!/usr/bin/env bash
# Fill .device/ (ignored by git) with everything a lent NVIDIA H200 needs to train our recipes
# (scripts/device/train_recipes.sh) on ED and ESConv without installing anything from a
# network (the device machine reaches none): see docs/device_runs.md. Run it here, right
# before the device call, after the last code change (the device script refuses a wheel
# older than the checkout).
#
#   PARLAI_EMPATHY_MIRROR=../shared/data [RESUME_POINTS="NAME ..."] \
#     [COBERT=1 VECTORS=none] bash scripts/device/build_bundle.sh
#
# .device/wheels/  py3.12 wheels the device image lacks: ParlAI 1.7.2, this package (built
#                  from the checkout, without the zoo archives), and the pure packages
#                  ParlAI's train_model/eval_model and our agents import (--no-deps each).
#                  No numpy: the image's numpy 2 stays (docs/device_runs.md says why).
# .device/data/    ed.tar.xz (the three ED CSVs), esconv.tar.xz (the ESConv folder),
#                  model.dict (the papers' ED dictionary, built here by the bundled code) and
#                  word2vec_ed.bin.gz (the 300-d word2vec rows of that dictionary's words,
#                  VECTORS=glove-6b-50d for the GloVe 50-d rows instead; checked identical).
#                  VECTORS=none: no rows (a bundle for CoBERT only, which needs the room).
# .device/resume/  NAME.tar.gz for each NAME in RESUME_POINTS: zoo/empathy/resume_points/
#                  NAME.tar.gz, which train_recipes.sh continues instead of starting afresh.
# .device/init/    COBERT=1: cobert.tar.gz, an untrained CoBERT on the packaged
#                  all-MiniLM-L6-v2 in zoo format (fp16 weights, its tokenizer and encoder
#                  config; the fp32 encoder is 87 MiB, over a call's 64 MiB), from which
#                  train_recipes.sh starts recipes/cobert_*.sh.
# .device/MANIFEST.txt  versions, sizes, sha256, the source fingerprint.
#
# VENV (default .venv, from scripts/setup_env.sh) supplies pip, the word vectors and a
# Python for build_dict. The bundle is built in .device.tmp/ and swapped in only when done.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${VENV:-.venv}"
BUNDLE="${BUNDLE:-.device}"
LIMIT_MIB="${LIMIT_MIB:-64}"
PY="$VENV/bin/python"
VECTORS="${VECTORS:-word2vec-bolukbasi-300}"
# the zoo's archives (releases, resume points): never in the wheel, never sent to the device
ZOO_ARCHIVES=(-e '^zoo/empathy/releases/.*\.tar\.gz$' -e '^zoo/empathy/resume_points/.*\.tar\.gz$')
read -r -a RESUME_NAMES <<< "${RESUME_POINTS:-}"
MIRROR="${PARLAI_EMPATHY_MIRROR:?set PARLAI_EMPATHY_MIRROR to the folder holding empatheticdialogues/*.csv}"
[ -x "$PY" ] || { echo "build_bundle: $PY not found (bash scripts/setup_env.sh, or VENV=...)" >&2; exit 1; }
for split in train valid test; do
  [ -f "$MIRROR/empatheticdialogues/$split.csv" ] || {
    echo "build_bundle: $MIRROR/empatheticdialogues/$split.csv not found" >&2; exit 1; }
done
for split in train valid test; do
  [ -f "$MIRROR/esconv/$split.json" ] || {
    echo "build_bundle: $MIRROR/esconv/$split.json not found" >&2; exit 1; }
done
for name in "${RESUME_NAMES[@]}"; do
  [ -f "zoo/empathy/resume_points/$name.tar.gz" ] || {
    echo "build_bundle: zoo/empathy/resume_points/$name.tar.gz not found" >&2; exit 1; }
done

# Pure-Python packages the image lacks, at constraints.txt's versions (pip builds the few
# that PyPI has only as source into py3-none-any wheels).
PURE=(parlai==1.7.2 coloredlogs humanfriendly iopath nltk subword-nmt mock defusedxml
      rouge-score vaderSentiment)

STAGE="$BUNDLE.tmp"
WORK="$(mktemp -d)"
trap 'rm -rf "$STAGE" "$WORK"' EXIT
rm -rf "$STAGE"
mkdir -p "$STAGE/wheels" "$STAGE/data"
quiet() {  # pip's notes about absent local indexes are noise here
  local log rc=0
  log="$(mktemp)"
  "$@" > "$log" 2>&1 || rc=$?
  grep -v -e '^WARNING: Location' -e 'is ignored: it is neither' "$log" || true
  rm -f "$log"
  return "$rc"
}
PIP=("$PY" -m pip --disable-pip-version-check)

echo "== wheels"
quiet "${PIP[@]}" wheel -q --no-deps -c constraints.txt -w "$STAGE/wheels" "${PURE[@]}"
# this package, from the working tree (tracked and untracked-not-ignored files), without the
# zoo release archives and resume points: not needed to train, and they would not fit the
# transfer
mkdir -p "$WORK/src"
git ls-files -co --exclude-standard -z | grep -zv "${ZOO_ARCHIVES[@]}" \
  | xargs -0 cp --parents -t "$WORK/src"
quiet "${PIP[@]}" wheel -q --no-deps --no-build-isolation -w "$STAGE/wheels" "$WORK/src"
OURS="$(ls "$STAGE"/wheels/parlai_empathy-*.whl)"
"$PY" - "$OURS" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
assert "parlai_empathy.pth" in names, "parlai_empathy.pth missing from the wheel"
assert "parlai/agents/empathy/moel.py" in names, "agents missing from the wheel"
assert not [n for n in names if n.endswith(".tar.gz")], "zoo archives in the wheel"
EOF
SOURCE_FINGERPRINT="$(python3 scripts/device/source_fingerprint.py "$WORK/src")"

echo "== data"
tar -C "$MIRROR" -cf - empatheticdialogues/train.csv empatheticdialogues/valid.csv \
  empatheticdialogues/test.csv | xz -9 -T2 > "$STAGE/data/ed.tar.xz"
tar -C "$MIRROR" -cf - esconv | xz -9 -T2 > "$STAGE/data/esconv.tar.xz"
# The dictionary and the vector rows come from the bundled code itself (installed into a
# scratch folder that shadows the venv's copy), so they are what the device would build.
mkdir -p "$WORK/site" "$WORK/datapath"
quiet "${PIP[@]}" install -q --no-index --no-deps --no-compile --target "$WORK/site" \
  "$STAGE"/wheels/parlai-1.7.2-*.whl "$OURS"
export DEVICE_SITE="$WORK/site" PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
export PARLAI_DATAPATH="$WORK/datapath" PARLAI_EMPATHY_MIRROR="$MIRROR"
"$PY" scripts/device/site_run.py parlai build_dict -m empathy/moel -t empathetic_dialogues \
  --train-experiencer-only true -df "$STAGE/data/model.dict" > "$WORK/build_dict.log" 2>&1 \
  || { tail -30 "$WORK/build_dict.log" >&2; exit 1; }
rm -f "$STAGE/data/model.dict.opt"
case "$VECTORS" in
  word2vec-bolukbasi-300) ROWS=word2vec_ed.bin.gz ;;
  glove-6b-50d) ROWS=glove_6b_50d_ed.txt.gz ;;
  none) ROWS=none ;;
  *) echo "build_bundle: VECTORS=$VECTORS (word2vec-bolukbasi-300, glove-6b-50d or none)" >&2
     exit 1 ;;
esac
if [ "$ROWS" != none ]; then
  "$PY" scripts/device/site_run.py scripts/device/vectors_subset.py --source "$VECTORS" \
    --dict-file "$STAGE/data/model.dict" --out "$STAGE/data/$ROWS"
fi
echo "$VECTORS $ROWS" > "$STAGE/data/VECTORS"
if [ "${COBERT:-0}" = 1 ]; then
  echo "== untrained CoBERT (fp16)"
  mkdir -p "$STAGE/init" "$WORK/cobert"
  cat > "$WORK/cobert_init.py" <<'PY'
import sys
from parlai.core.agents import create_agent
from parlai.core.params import ParlaiParser
model_file = sys.argv[1]
opt = ParlaiParser(True, True).parse_args(
    ["-m", "empathy/cobert", "-t", "empathy_ranking:ed", "-mf", model_file])
create_agent(opt).save(model_file)
PY
  "$PY" scripts/device/site_run.py "$WORK/cobert_init.py" "$WORK/cobert/model" \
    > "$WORK/cobert.log" 2>&1 || { tail -30 "$WORK/cobert.log" >&2; exit 1; }
  "$PY" scripts/device/site_run.py parlai_empathy.zoo pack --model-file "$WORK/cobert/model" \
    --name cobert --version init --out "$WORK/cobert" --fp16 > /dev/null
  mv "$WORK/cobert/cobert-init.tar.gz" "$STAGE/init/cobert.tar.gz"
fi
if [ "${#RESUME_NAMES[@]}" -gt 0 ]; then
  mkdir -p "$STAGE/resume"
  for name in "${RESUME_NAMES[@]}"; do
    cp "zoo/empathy/resume_points/$name.tar.gz" "$STAGE/resume/"
  done
fi

echo "== manifest"
{
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes')"
  echo "source_fingerprint $SOURCE_FINGERPRINT"
  (cd "$STAGE" && for d in wheels data resume init; do [ ! -d "$d" ] || find "$d" -type f; done \
     | sort | while read -r f; do
     echo "file $f $(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)"; done)
} > "$STAGE/MANIFEST.txt"
rm -rf "$BUNDLE"
mv "$STAGE" "$BUNDLE"
cat "$BUNDLE/MANIFEST.txt"

# What a device call sends: the working tree (tracked and untracked-not-ignored files) plus
# the carried .device/, at most 64 MiB together. The zoo's archives travel too unless they are
# taken out of the index for the call (docs/device_runs.md, section 2): counted apart.
bytes_of() { xargs -0 -r stat -c %s | awk '{s+=$1} END {print s+0}'; }
TREE_BYTES="$(git ls-files -co --exclude-standard -z | grep -zv "${ZOO_ARCHIVES[@]}" | bytes_of)"
ZOO_BYTES="$(git ls-files -co --exclude-standard -z | grep -z "${ZOO_ARCHIVES[@]}" | bytes_of)"
echo "zoo archives and resume points in the index: $((ZOO_BYTES >> 20)) MiB (must not travel)"
BUNDLE_BYTES="$(du -sb "$BUNDLE" | cut -f1)"
"$PY" - "$TREE_BYTES" "$BUNDLE_BYTES" "$LIMIT_MIB" <<'EOF'
import sys
tree, bundle, limit = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
mib = 1 << 20
total = tree + bundle
print(f"bundle {bundle / mib:.1f} MiB + working tree {tree / mib:.1f} MiB = "
      f"{total / mib:.1f} MiB of the {limit:g} MiB a device call may send "
      f"({(limit * mib - total) / mib:.1f} MiB to spare)")
if total > limit * mib:
    sys.exit("build_bundle: too large for one device call")
EOF
