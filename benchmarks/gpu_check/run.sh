#!/usr/bin/env bash
# One-shot GPU check of mtkit: fairseq set-up, `mtkit doctor`, dense translation (cpu vs cuda fp32/fp16/bf16:
# lines, top-1 agreement, BLEU, wall time), fairseq-interactive on cuda, a short MoE training on one GPU
# (fp16 and bf16: loss goes down, MoE metrics logged), translation of the MoE checkpoint and the safe
# checkpoint loader on the GPU. Every step has its own time limit and records its exit status; a failing
# step never stops the next one. See README.md beside this file.
#
#   benchmarks/gpu_check/run.sh                  # normal: python3 (or PYTHON) already has fairseq + mtkit deps
#   OFFLINE=1 benchmarks/gpu_check/run.sh        # no network: fairseq from .devdata/, its deps from .whl/
#   DRY=1 PYTHON=.venv/bin/python benchmarks/gpu_check/run.sh   # CPU dry run of the logic, small inputs
#
# Environment: OUT [runs/gpu_check] (log.txt, summary.json, training logs), PYTHON [python3],
# DATA [.devdata] (prepare_offline.sh), GPU_CHECK_WORK [/tmp/gpu_check] (scratch, wiped), LINES [all],
# MOE_UPDATES [300], OPTIONAL_BUDGET_S [330] (an optional step runs only if it can end before the check is
# this old), GPU_CHECK_DEADLINE_S [450] (no step runs past it, so that the summary is always written).
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$repo/benchmarks/gpu_check

# step NAME LIMIT_S FUNCTION: run FUNCTION in a fresh process under `timeout`, record rc and wall time
step() {
  local name=$1 limit=$2 fn=$3 t0 rc left
  if [[ -n "${GPU_CHECK_ONLY:-}" && " $GPU_CHECK_ONLY " != *" $name "* ]]; then return; fi  # not selected
  left=$(( ${GPU_CHECK_DEADLINE_S:-450} - ($(date +%s) - T0) ))   # keep time for the summary
  (( left < limit )) && limit=$left
  if (( limit < 15 )); then
    echo "=== [$name] skipped: GPU_CHECK_DEADLINE_S reached"; printf '%s\t124\t0\tskipped (deadline)\n' "$name" >>"$W/steps.tsv"; return
  fi
  echo; echo "=== [$name] $(date +%T) limit ${limit}s (check at $(( $(date +%s) - T0 ))s)"
  t0=$(date +%s.%N)
  timeout -k 10 "$limit" bash "$here/run.sh" __step "$fn"
  rc=$?
  local wall; wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  [[ $rc == 124 || $rc == 137 ]] && echo "!!! [$name] timed out after ${limit}s"
  printf '%s\t%s\t%s\n' "$name" "$rc" "$wall" >>"$W/steps.tsv"
  echo "=== [$name] rc=$rc wall=${wall}s"
}
# optional NAME LIMIT FUNCTION: a step that runs only while the whole check is under OPTIONAL_BUDGET_S
optional() {
  if (( $(date +%s) - T0 + $2 > ${OPTIONAL_BUDGET_S:-330} )); then
    echo "=== [$1] skipped: optional step would pass OPTIONAL_BUDGET_S"; printf '%s\t0\t0\tskipped\n' "$1" >>"$W/steps.tsv"
  else step "$@"; fi
}

# ---------------------------------------------------------------- set-up (in this shell: it sets the environment)
source "$here/offline_setup.sh"  # setup_offline: fairseq from .devdata/, its deps from .whl/
# ---------------------------------------------------------------- steps
s_import() {
  "$PY" - <<'EOF'
import importlib, sys, platform
t = __import__("time").perf_counter()
import torch, numpy, fairseq, fairseq_cli.train, fairseq_cli.generate, fairseq_cli.interactive  # noqa: E401
import mtkit.plugin
mtkit.plugin.register()
v = {m: getattr(importlib.import_module(m), "__version__", "?") for m in ("hydra", "omegaconf", "sacrebleu", "sentencepiece")}
print(f"python {platform.python_version()} torch {torch.__version__} cuda {torch.cuda.is_available()} "
      f"numpy {numpy.__version__} fairseq {fairseq.__version__} from {fairseq.__file__} {v} "
      f"import+register {__import__('time').perf_counter() - t:.1f}s")
EOF
}
s_doctor() { "$PY" -m mtkit.cli doctor; "$PY" -m mtkit.cli doctor --json >"$W/doctor.json"; true; }

# translate MODEL_NAME: cpu baseline, then the device with every precision
translate_model() {
  local m=$1 rc=0 p name
  "$PY" "$here/check.py" translate --name "$m-cpu" --model "$DATA/$m" --src "$W/data/$m.en_XX" \
    --ref "$W/data/$m.fr_XX" -- --device cpu --threads 8 || rc=1
  for p in $PRECISIONS; do  # fp32 --fp16 --bf16
    name="$m-$GPU_CHECK_DEVICE-${p#--}"; [[ $p == fp32 ]] && p=""
    "$PY" "$here/check.py" translate --name "$name" --model "$DATA/$m" --src "$W/data/$m.en_XX" \
      --ref "$W/data/$m.fr_XX" --base "$m-cpu" -- --device "$GPU_CHECK_DEVICE" $p || rc=1
  done
  return $rc
}
s_tiny() { translate_model tiny; }
s_mini() { translate_model mini; }
s_interactive() {
  "$PY" "$here/check.py" interactive --name "mini-interactive-$GPU_CHECK_DEVICE" --model "$DATA/mini" \
    --src "$W/data/mini.en_XX" --ref "$W/data/mini.fr_XX" --base mini-cpu --device "$GPU_CHECK_DEVICE"
}

# MoE: PREC (memory-efficient-fp16 | memory-efficient-bf16 | fp16 | none), UPDATES
moe_run() {
  local prec=$1 updates=$2 tag=moe-$1 d
  d=$W/$tag && mkdir -p "$d"
  cp "$DATA"/tiny/{dict.txt,spm.model,langs.txt} "$d/"   # the model folder mtkit translate reads
  local args=("$DATA/tiny/databin" --user-dir "$USER_DIR" --seed 1
    --task translation_multi_simple_epoch --lang-dict "$DATA/tiny/langs.txt"
    --lang-pairs en_XX-de_DE,en_XX-fr_XX,de_DE-en_XX,fr_XX-en_XX --encoder-langtok src --decoder-langtok
    --arch transformer_moe_tiny --encoder-normalize-before --decoder-normalize-before --share-all-embeddings
    --dropout 0 --moe-second-expert-policy all --criterion moe_label_smoothed_cross_entropy --label-smoothing 0.1
    --moe-log-lang-usage --optimizer adam --adam-betas "(0.9, 0.98)" --lr 0.005 --lr-scheduler inverse_sqrt
    --warmup-updates 50 --max-tokens 2000 --num-workers 0 --log-format json --log-interval 20
    --no-progress-bar --max-update "$updates" --ddp-backend legacy_ddp --no-epoch-checkpoints
    --disable-validation --save-dir "$d/checkpoints")
  [[ "$prec" != none ]] && args+=("--$prec")
  [[ "$GPU_CHECK_DEVICE" == cpu ]] && args+=(--cpu --log-interval 1)
  local t0 rc wall; t0=$(date +%s.%N)
  echo "+ $PY -m fairseq_cli.train ${args[*]}"
  "$PY" -m fairseq_cli.train "${args[@]}" >"$W/$tag.log" 2>&1; rc=$?
  wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  grep -E "train_inner|\| train \||Error|error|Traceback" "$W/$tag.log" | tail -25
  cp "$W/$tag.log" "$OUT/$tag.log"
  "$PY" "$here/check.py" moe-log --name "$tag-train" --log "$W/$tag.log" --rc "$rc" --wall "$wall"
  local ok=$?
  (( rc == 0 )) || return 1
  "$PY" "$here/check.py" translate --name "$tag-translate-$GPU_CHECK_DEVICE" --model "$d" \
    --src "$W/data/tiny.en_XX" --ref "$W/data/tiny.fr_XX" -- --device "$GPU_CHECK_DEVICE" || ok=1
  return $ok
}
s_moe_fp16() { if [[ "$DRY" == 1 ]]; then moe_run none "$MOE_UPDATES"; else moe_run memory-efficient-fp16 "$MOE_UPDATES"; fi; }
s_moe_bf16() { moe_run memory-efficient-bf16 "$MOE_UPDATES"; }
s_moe_plain_fp16() { moe_run fp16 100; }
s_ckpt() {
  local d; d=$(ls -d "$W"/moe-*/checkpoints | head -1)
  "$PY" "$here/check.py" ckpt --name "moe-checkpoint-$GPU_CHECK_DEVICE" --model "$(dirname "$d")" \
    --shared "$d/checkpoint_last-shared.pt" --device "$GPU_CHECK_DEVICE"
}
s_pytest() { "$PY" -m pytest -q -p no:cacheprovider "$repo/tests/test_moe_gate.py" -x; }

# ---------------------------------------------------------------- main
if [[ "${1:-}" == "__step" ]]; then  # run.sh __step FUNCTION: one step in its own process (see step())
  "$2"; exit $?
fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} MKL_NUM_THREADS=${MKL_NUM_THREADS:-4}
export PY=${PYTHON:-python3} DATA=${DATA:-$repo/.devdata} W=${GPU_CHECK_WORK:-/tmp/gpu_check}
OUT=${OUT:-$repo/runs/gpu_check}
export OUT GPU_CHECK_WORK=$W DRY=${DRY:-0} MOE_UPDATES=${MOE_UPDATES:-300}
mkdir -p "$OUT"
rm -rf "$W" && mkdir -p "$W/data" "$W/hyp"
exec > >(tee -a "$OUT/log.txt") 2>&1
T0=$(date +%s)
echo "gpu_check $(date -u +%FT%TZ) repo=$repo py=$PY dry=$DRY host=$(uname -n)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

if [[ "$DRY" == 1 ]]; then
  export GPU_CHECK_DEVICE=cpu LINES=${LINES:-60} MOE_UPDATES=${MOE_UPDATES_DRY:-8}
  export PRECISIONS="fp32"
else
  export GPU_CHECK_DEVICE=cuda LINES=${LINES:-}
  export PRECISIONS="fp32 --fp16 --bf16"
fi

T_SETUP=$(date +%s) SETUP_RC=0
if [[ "${OFFLINE:-0}" == 1 ]]; then setup_offline; else export PYTHONPATH=$repo${PYTHONPATH:+:$PYTHONPATH}; fi
printf 'setup\t%s\t%s\t%s\n' "$SETUP_RC" "$(( $(date +%s) - T_SETUP ))" "fairseq extensions: ${GPU_CHECK_FAIRSEQ_EXT:-installed}" >>"$W/steps.tsv"
export USER_DIR=$repo/mtkit

# inputs: copies (first LINES lines) under $W/data
for m in tiny mini; do
  if [[ -n "$LINES" ]]; then head -n "$LINES" "$DATA/$m/src.en_XX" >"$W/data/$m.en_XX"; head -n "$LINES" "$DATA/$m/ref.fr_XX" >"$W/data/$m.fr_XX"
  else cp "$DATA/$m/src.en_XX" "$W/data/$m.en_XX"; cp "$DATA/$m/ref.fr_XX" "$W/data/$m.fr_XX"; fi
done

step import 90 s_import
step doctor 60 s_doctor
step tiny_translate 120 s_tiny
step mini_translate 150 s_mini
step mini_interactive 90 s_interactive
step moe_fp16 120 s_moe_fp16
step moe_checkpoint 60 s_ckpt
if [[ "$DRY" != 1 ]]; then
  optional moe_plain_fp16 60 s_moe_plain_fp16
  # fairseq 0.12 ties --bf16 to --tpu (fairseq/options.py); mtkit's plugin unties it when torch_xla is absent
  optional moe_bf16 100 s_moe_bf16
fi
optional pytest_moe_gate 60 s_pytest

echo; echo "=== summary ($(( $(date +%s) - T0 ))s)"
cp "$W/doctor.json" "$OUT/" 2>/dev/null
"$PY" "$here/check.py" summary --out "$OUT/summary.json"
echo "gpu_check done in $(( $(date +%s) - T0 ))s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
