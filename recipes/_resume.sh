# Sourced by the recipes whose training is longer than a working session (moel_ed.sh,
# moel16_ed.sh, mime_ed.sh, moel_esconv.sh, transformer_baseline_ed.sh). RESUME_FROM=FILE (a
# resume point written by
#   .venv/bin/python -m parlai_empathy.resume_point pack --model-file RUN_DIR/model --out FILE)
# is restored into RUN_DIR when RUN_DIR holds no run yet; a RUN_DIR that holds one (a saved
# model or checkpoint with its .trainstats) resumes from its own files, Adam's moments included.
restore_resume_point() {
  local run_dir="$1"
  if [ -n "${RESUME_FROM:-}" ] && [ ! -f "$run_dir/model.trainstats" ] \
      && [ ! -f "$run_dir/model.checkpoint.trainstats" ]; then
    "${PYTHON:-.venv/bin/python}" -m parlai_empathy.resume_point unpack "$RESUME_FROM" \
      --model-file "$run_dir/model"
  fi
}
