#!/usr/bin/env bash
# CoBERT on ESConv and the same baselines, the protocol of recipes/cobert_ed.sh (read it):
# supporter turns as responses (-t empathy_ranking:esconv), each test example ranking its
# gold among 100 responses of the test split; one table RUN_DIR/results.md. Same knobs.
#
#   PARLAI_EMPATHY_MIRROR=../shared/data nohup bash recipes/cobert_esconv.sh [RUN_DIR] &
set -euo pipefail
DATASET=esconv exec bash "$(dirname "$0")/cobert_ed.sh" "${1:-runs/cobert_esconv}"
