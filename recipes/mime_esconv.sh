#!/usr/bin/env bash
# MIME on ESConv, exactly as recipes/moel_esconv.sh trains MoEL there (same data, dictionary
# rules, seed 1234, batch 16, Noam warm-up 1000, validation every 500 updates, patience 3,
# ParlAI's rule; test scored with beam 5 and greedy), with MIME's official sizes. ESConv's 11
# emotion types are all negative (parlai_empathy.emotions), so MIME has one polarity group there
# and its mimicry switch changes nothing; the stochastic mixture and the emotion-input encoders
# are still MIME's own.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data nohup bash recipes/mime_esconv.sh [RUN_DIR] &
#
# TRAIN_ONLY, RESUME_FROM, MAX_TRAIN_STEPS, WARMUP_UPDATES: as recipes/moel_esconv.sh.
set -euo pipefail
AGENT=empathy/mime exec bash "$(dirname "$0")/moel_esconv.sh" "${1:-runs/mime_esconv}"
