#!/usr/bin/env bash
# ML50-mini's systems compared with `mtkit compare`: bilingual-from-scratch baselines (the baseline)
# against the multilingual finetuned model, on the directions both have.
#
#   MINI_SCALE=0.3 MINI_TEST_SIZE=200 MINI_BILINGUAL=si_LK,sw_KE,gl_ES bash benchmarks/compare/run_mini.sh
#
# 1. recipes/mini/run.sh with the environment given (stages already done in MINI_WORK are skipped);
# 2. mtkit compare on its eval/ folders (the command the recipe's evaluate stage should run);
# 3. compare.json, report.md and the run's stage timings copied to benchmarks/compare/mini/.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
WORK=${MINI_WORK:-work/mini}
export MINI_WORK=$WORK
bash recipes/mini/run.sh
# the resource classes of recipes/mini/report.py (training lines with English)
mtkit compare "bilingual=$WORK/eval/bilingual/hyp" "multilingual=$WORK/eval/m2m/hyp" \
  --ref-dir "$WORK/data/raw" --split test --train-dir "$WORK/data/raw" \
  --resource-thresholds "high=30000,mid=5000,low=500,very low=0" --out "$WORK/compare"
mkdir -p benchmarks/compare/mini
cp "$WORK/compare/compare.json" "$WORK/compare/report.md" "$WORK/timings.tsv" benchmarks/compare/mini/
