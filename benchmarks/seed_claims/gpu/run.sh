#!/usr/bin/env bash
# Both MoE seed-claim experiments on one GPU machine (e.g. one H200 with 16 CPU cores), offline, in
# about TRAIN_S + 3 minutes:
#   moe_vs_dense   on the GPU: dense / MoE / MoE+EOM x 3 seeds, all 9 runs at once, d=256, 4+4 layers
#                  (run.py --scale gpu); then every test set translated (beam 4) on the GPU
#   global_balance on the CPU cores at the same time: micro vs global balance, 2 gloo ranks per run,
#                  homogeneous micro-batches (run.py --scale big); then the expert frequencies
# Every run stops at TRAIN_S seconds if it has not reached its planned updates; each experiment is then
# evaluated at the largest update count every one of its runs validated and saved (results.json
# says which). Scoring (mtkit compare), results.json, report.md and plots are made afterwards, on any
# machine, from the archives this writes:
#
#   benchmarks/seed_claims/gpu/run.sh                       # python3 has fairseq and mtkit's deps
#   OFFLINE=1 benchmarks/seed_claims/gpu/run.sh             # no network: fairseq from .devdata/, deps from .whl/
#   benchmarks/seed_claims/gpu/analyse.sh OUT               # later, here: unpack, compare, report
#
# Needs: the corpus of ../data.sh in SEED_CLAIMS_DATA [work/seed_claims/data]; with OFFLINE=1, .whl/ and
# .devdata/fairseq-src.tar.gz (FAIRSEQ_ONLY=1 benchmarks/gpu_check/prepare_offline.sh).
# Environment: OUT [runs/seed_claims_gpu], PYTHON [python3], W [/tmp/seed_claims_gpu, scratch],
# TRAIN_S [150], GPU_JOBS [9], CPU_CORES [16], DRY [0; 1: CPU only, a few updates, to test the script].
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$repo"
PY=${PYTHON:-python3}
OUT=$(mkdir -p "${OUT:-runs/seed_claims_gpu}" && cd "${OUT:-runs/seed_claims_gpu}" && pwd)
W=${W:-/tmp/seed_claims_gpu}
DATA=${DATA:-$repo/.devdata}
TRAIN_S=${TRAIN_S:-150}
DRY=${DRY:-0}
export SEED_CLAIMS_DATA=${SEED_CLAIMS_DATA:-$repo/work/seed_claims/data}
rm -rf "$W" && mkdir -p "$W"
T0=$(date +%s)
log() { echo "[$(( $(date +%s) - T0 ))s] $*"; }

if [[ "${OFFLINE:-0}" == 1 ]]; then
  source "$repo/benchmarks/gpu_check/offline_env.sh"
  setup_offline
else
  export PYTHONPATH=$repo${PYTHONPATH:+:$PYTHONPATH}
fi
log "set-up done; $("$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>&1)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'

mvd=(--scale gpu --runner local --work "$W/mvd")
gb=(--scale big --runner local --work "$W/gb")
if [[ "$DRY" == 1 ]]; then  # the logic on a CPU: the small model, a few updates, one seed
  mvd=(--scale cpu --runner local --work "$W/mvd" --updates 20 --interval 10 --seeds 1 --beam 1)
  gb+=(--updates 20 --interval 10 --seeds 1)
fi
"$PY" benchmarks/seed_claims/moe_vs_dense/run.py "${mvd[@]}" --phases train --cores "${GPU_JOBS:-9}" \
  --deadline "$TRAIN_S" >"$OUT/moe_vs_dense.train.log" 2>&1 &
p1=$!
"$PY" benchmarks/seed_claims/global_balance/run.py "${gb[@]}" --phases train --cores "${CPU_CORES:-16}" \
  --deadline "$TRAIN_S" --niceness 5 >"$OUT/global_balance.train.log" 2>&1 &
p2=$!
wait $p1; rc1=$?; wait $p2; rc2=$?
log "training done (moe_vs_dense rc=$rc1, global_balance rc=$rc2)"
"$PY" benchmarks/seed_claims/moe_vs_dense/run.py "${mvd[@]}" --phases translate --jobs "${GPU_JOBS:-9}" \
  >"$OUT/moe_vs_dense.translate.log" 2>&1 &
p1=$!
"$PY" benchmarks/seed_claims/global_balance/run.py "${gb[@]}" --phases usage --jobs 8 >"$OUT/global_balance.usage.log" 2>&1 &
p2=$!
wait $p1; rc3=$?; wait $p2; rc4=$?
log "evaluation done (translate rc=$rc3, usage rc=$rc4)"
# what the analysis needs: logs, status files, hypotheses, expert usage (no checkpoints)
(cd "$W/mvd" && tar -czf "$OUT/moe_vs_dense.tar.gz" runs/*/train.log ./*.json hyp 2>/dev/null)
(cd "$W/gb" && tar -czf "$OUT/global_balance.tar.gz" runs/*/train.log ./*.json 2>/dev/null)
printf '{"train_s": %s, "rc": {"mvd_train": %s, "gb_train": %s, "mvd_translate": %s, "gb_usage": %s}, "total_s": %s}\n' \
  "$TRAIN_S" "$rc1" "$rc2" "$rc3" "$rc4" "$(( $(date +%s) - T0 ))" >"$OUT/gpu_run.json"
log "archives in $OUT:"; ls -la "$OUT"
