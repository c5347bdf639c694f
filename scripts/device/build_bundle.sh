#!/usr/bin/env bash
# Fill .device/ (ignored by git) with everything a lent NVIDIA H200 needs to train MoEL on ED
# without installing anything from a network (the device machine reaches none): see
# docs/device_runs.md. Run it here, right before the device call, after the last code change
# (the device script refuses a wheel older than the checkout).
#
#   PARLAI_EMPATHY_MIRROR=../shared/data bash scripts/device/build_bundle.sh
#
# .device/wheels/  py3.12 wheels the device image lacks: ParlAI 1.7.2, this package (built
#                  from the checkout, without the zoo archives), and the pure packages
#                  ParlAI's train_model/eval_model and our agents import (--no-deps each).
#                  No numpy: the image's numpy 2 stays (docs/device_runs.md says why).
# .device/data/    ed.tar.xz (the three ED CSVs), model.dict (the papers' dictionary, built
#                  here by the bundled code) and glove_6b_50d_ed.txt.gz (the packaged GloVe
#                  rows of that dictionary's words, checked identical).
# .device/MANIFEST.txt  versions, sizes, sha256, the source fingerprint.
#
# VENV (default .venv, from scripts/setup_env.sh) supplies pip, the GloVe package and a
# Python for build_dict. The bundle is built in .device.tmp/ and swapped in only when done.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${VENV:-.venv}"
BUNDLE="${BUNDLE:-.device}"
LIMIT_MIB="${LIMIT_MIB:-64}"
PY="$VENV/bin/python"
MIRROR="${PARLAI_EMPATHY_MIRROR:?set PARLAI_EMPATHY_MIRROR to the folder holding empatheticdialogues/*.csv}"
[ -x "$PY" ] || { echo "build_bundle: $PY not found (bash scripts/setup_env.sh, or VENV=...)" >&2; exit 1; }
for split in train valid test; do
  [ -f "$MIRROR/empatheticdialogues/$split.csv" ] || {
    echo "build_bundle: $MIRROR/empatheticdialogues/$split.csv not found" >&2; exit 1; }
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
# zoo release archives: they are not needed to train and would not fit the transfer
mkdir -p "$WORK/src"
git ls-files -co --exclude-standard -z | grep -zv '^zoo/empathy/releases/' \
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
# The dictionary and the GloVe rows come from the bundled code itself (installed into a
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
"$PY" scripts/device/site_run.py scripts/device/glove_subset.py \
  --dict-file "$STAGE/data/model.dict" --out "$STAGE/data/glove_6b_50d_ed.txt.gz"

echo "== manifest"
{
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes')"
  echo "source_fingerprint $SOURCE_FINGERPRINT"
  (cd "$STAGE" && find wheels data -type f | sort | while read -r f; do
     echo "file $f $(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)"; done)
} > "$STAGE/MANIFEST.txt"
rm -rf "$BUNDLE"
mv "$STAGE" "$BUNDLE"
cat "$BUNDLE/MANIFEST.txt"

# What a device call sends: the working tree (tracked and untracked-not-ignored files) plus
# the carried .device/, at most 64 MiB together.
TREE_BYTES="$(git ls-files -co --exclude-standard -z | xargs -0 stat -c %s | awk '{s+=$1} END {print s+0}')"
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
