# Sourced by the recipes that end in a zoo release (moel_ed.sh, moel16_ed.sh, mime_ed.sh).
# pack_release NAME RUN_DIR VERSION packs RUN_DIR/model as RUN_DIR/release/NAME-VERSION.tar.gz
# (fp16 weights, no optimizer state; zoo/empathy/NAME.py names the version and its sha256)
# and unpacks it into RUN_DIR/release/unpacked, so the test numbers are measured on the
# released weights themselves.
pack_release() {
  local name="$1" run_dir="$2" version="$3"
  "${PYTHON:-.venv/bin/python}" -m parlai_empathy.zoo pack --model-file "$run_dir/model" \
    --name "$name" --version "$version" --out "$run_dir/release" --fp16
  mkdir -p "$run_dir/release/unpacked"
  tar -xzf "$run_dir/release/$name-$version.tar.gz" -C "$run_dir/release/unpacked"
}
