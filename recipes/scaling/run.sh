#!/usr/bin/env bash
# Downstream scaling laws (Isik et al. 2024) on this toolkit: denoising pretraining checkpointed on a
# geometric grid of pretraining tokens D, every checkpoint finetuned on one direction with the
# mtkit tune engine, both laws fitted with mtkit scaling fit, with and without the finetuning
# languages in the pretraining text. The stages and outputs are described in sweep.py.
#
#   bash recipes/scaling/run.sh --out DIR                     # mini profile: this machine's gettext corpus
#   bash recipes/scaling/run.sh --out DIR --profile gpu       # ML50 text, base-size model, one GPU
#   bash recipes/scaling/run.sh --out DIR --profile gpu --dry # print the GPU plan, run nothing
#   bash recipes/scaling/run.sh --out DIR --smoke             # every stage at a tiny size
#
# A killed run resumes: start the same command again. Every argument goes to sweep.py ("$@" last).
# Environment (defaults in brackets):
#   SCALING_WORK [work/scaling/PROFILE]   databins, checkpoints and the tune run
#   SCALING_RAW  [built here]             an existing mtkit data text folder to use instead
#   SCALING_ML50_ARGS [""]                extra mtkit data ml50 options for the gpu profile (e.g. --mirror DIR)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
if ! command -v mtkit >/dev/null 2>&1 && [[ -x "$repo/.venv/bin/mtkit" ]]; then export PATH="$repo/.venv/bin:$PATH"; fi
command -v mtkit >/dev/null 2>&1 || { echo "run.sh: mtkit not found; bash scripts/setup.sh first" >&2; exit 2; }
PY=$(dirname "$(command -v mtkit)")/python

profile=mini dry=0 smoke=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --profile) profile=${args[i + 1]:-} ;;
    --profile=*) profile=${args[i]#--profile=} ;;
    --dry) dry=1 ;;
    --smoke) smoke=1 ;;
  esac
done
name=$profile; [[ $smoke == 1 ]] && name=$profile-smoke
WORK=${SCALING_WORK:-work/scaling/$name}
mkdir -p "$WORK"

RAW=${SCALING_RAW:-}
if [[ -z "$RAW" ]]; then
  case $profile in
    mini)
      RAW=$WORK/gt/raw
      if [[ $dry == 0 && ! -f "$WORK/gt/manifest.json" ]]; then
        mtkit data gettext --out "$WORK/gt" --langs en_XX,ro_RO,de_DE,es_XX,fr_XX,gl_ES --valid-size 200 --test-size 500
      fi ;;
    gpu)
      RAW=$WORK/ml50/clean
      if [[ $dry == 0 && ! -d "$RAW" ]]; then
        # shellcheck disable=SC2086  # SCALING_ML50_ARGS is a word list on purpose
        mtkit data ml50 --out "$WORK/ml50" --langs de_DE,es_XX,fr_XX,ro_RO --steps download,extract,dedup,clean \
            ${SCALING_ML50_ARGS:-}
      fi ;;
    *) echo "run.sh: --profile must be mini or gpu, not '$profile'" >&2; exit 2 ;;
  esac
fi
exec "$PY" "$here/sweep.py" --raw "$RAW" --work "$WORK" --command "bash recipes/scaling/run.sh $*" "$@"
