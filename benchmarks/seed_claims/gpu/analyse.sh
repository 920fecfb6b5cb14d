#!/usr/bin/env bash
# Score and report what benchmarks/seed_claims/gpu/run.sh brought back (its OUT folder): unpack the
# archives, run mtkit compare on the translations, write results.json, report.md and plots of both
# experiments. Runs on any machine with mtkit (no GPU); the corpus must be the one the GPU run used.
#
#   benchmarks/seed_claims/gpu/analyse.sh OUT [NAME]
#
# Writes benchmarks/seed_claims/moe_vs_dense/results_NAME/ and .../global_balance/results_NAME/
# (NAME default: h200). Environment: SEED_CLAIMS_DATA [work/seed_claims/data], W [work/seed_claims/gpu].
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
in=$(cd "$1" && pwd)
name=${2:-h200}
W=${W:-$repo/work/seed_claims/gpu}
PY=${PYTHON:-python}
rm -rf "$W/mvd" "$W/gb" && mkdir -p "$W/mvd" "$W/gb"
tar -xzf "$in/moe_vs_dense.tar.gz" -C "$W/mvd"
tar -xzf "$in/global_balance.tar.gz" -C "$W/gb"
for exp in moe_vs_dense global_balance; do
  mkdir -p "$repo/benchmarks/seed_claims/$exp/results_$name"
  cp "$in/gpu_run.json" "$repo/benchmarks/seed_claims/$exp/results_$name/gpu_run.json"
done
RESULTS_DIR=$repo/benchmarks/seed_claims/moe_vs_dense/results_$name \
  "$PY" "$repo/benchmarks/seed_claims/moe_vs_dense/run.py" --scale gpu --phases analyse --work "$W/mvd"
RESULTS_DIR=$repo/benchmarks/seed_claims/global_balance/results_$name \
  "$PY" "$repo/benchmarks/seed_claims/global_balance/run.py" --scale big --phases analyse --work "$W/gb"
