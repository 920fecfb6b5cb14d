#!/usr/bin/env bash
# GPU throughput and MFU of fairseq-train with mtkit (run.py): set fairseq up, then run both trainings.
#
#   OFFLINE=1 bash benchmarks/gpu_scale/run.sh       # a CUDA machine without network: fairseq from
#                                                    # .devdata/, its dependencies from .whl/ (carried)
#   PYTHON=.venv/bin/python bash benchmarks/gpu_scale/run.sh   # fairseq already installed
#   DRY=1 PYTHON=.venv/bin/python bash benchmarks/gpu_scale/run.sh   # CPU dry run, tiny sizes
#
# Prepare .whl/ and .devdata/ once, here: FAIRSEQ_ONLY=1 benchmarks/gpu_check/prepare_offline.sh
# Environment: OUT [runs/gpu_scale] (results.json, logs), PYTHON [python3], DATA [.devdata],
# GPU_SCALE_WORK [/tmp/gpu_scale] (scratch: wheels, fairseq source, synthetic data).
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PY=${PYTHON:-python3} DATA=${DATA:-$repo/.devdata} W=${GPU_SCALE_WORK:-/tmp/gpu_scale}
export OUT=${OUT:-$repo/runs/gpu_scale} GPU_SCALE_WORK=$W PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$W"
T0=$(date +%s)
if [[ "${OFFLINE:-0}" == 1 ]]; then
  SETUP_RC=0
  source "$repo/benchmarks/gpu_check/offline_env.sh"
  setup_offline
  echo "--- set-up took $(( $(date +%s) - T0 ))s (rc $SETUP_RC)"
else
  export PYTHONPATH=$repo${PYTHONPATH:+:$PYTHONPATH}
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
dry=(); [[ "${DRY:-0}" == 1 ]] && dry=(--dry)
"$PY" "$repo/benchmarks/gpu_scale/run.py" --out "$OUT" "${dry[@]}" "$@"
rc=$?
echo "gpu_scale done in $(( $(date +%s) - T0 ))s (rc $rc); files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit $rc
