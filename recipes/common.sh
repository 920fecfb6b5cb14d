# Shared helpers of the recipes (sourced, not run): printing and running commands, the device
# probe, the launcher, the languages that have data, en-centric pairs, flag values.
# Every recipe prints each command before running it and stops at the first failure.
set -euo pipefail

say() { printf '%s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 2; }

# run CMD...: print the command (shell-quoted, one line) and run it
run() {
  local q=() a
  for a in "$@"; do q+=("$(printf '%q' "$a")"); done
  say "+ ${q[*]}"
  "$@"
}

need_file() { [[ -f "$1" ]] || die "$2: $1 does not exist${3:+ ($3)}"; }
need_dir() { [[ -d "$1" ]] || die "$2: $1 is not a folder${3:+ ($3)}"; }
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "command '$1' not found; activate the mtkit environment (pip install -e .)"; }

# need_args SCRIPT N ARGS...: print SCRIPT's header comment (its usage) and exit when ARGS are fewer
# than N (status 2) or start with -h/--help (status 0)
need_args() {
  local script=$1 n=$2
  shift 2
  if [[ "${1:-}" == -h || "${1:-}" == --help ]] || (( $# < n )); then
    sed -n '2,/^set -euo/p' "$script" | sed '$d; s/^# \{0,1\}//' >&2
    [[ "${1:-}" == -h || "${1:-}" == --help ]] && exit 0
    exit 2
  fi
}

# the --user-dir that registers mtkit's models, criteria and patches (safe checkpoint loader, ...)
user_dir() { mtkit user-dir; }

# device_flags train|generate: sets the array DEVICE. Without a GPU: --cpu, and for training the
# CPU's distributed settings (gloo; legacy_ddp, since fairseq's c10d DDP asks for a CUDA device).
# On a GPU machine it is empty. torch is asked once per script.
device_flags() {
  if [[ -z "${_cuda:-}" ]]; then
    if python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then _cuda=yes
    else _cuda=no; fi
  fi
  DEVICE=()
  if [[ $_cuda == no ]]; then
    DEVICE=(--cpu)
    [[ $1 == train ]] && DEVICE+=(--distributed-backend gloo --ddp-backend legacy_ddp)
  fi
  return 0
}

# train_command: sets the array TRAIN, the command that starts fairseq-train: LAUNCH (e.g.
# "torchrun --nnodes 2 --nproc-per-node 8 ...", "srun") followed by fairseq-train's path, or
# fairseq-train alone (which starts one process per visible GPU itself)
train_command() {
  local exe launch=()
  exe=$(command -v fairseq-train) || die "fairseq-train not found; activate the mtkit environment"
  read -r -a launch <<<"${LAUNCH:-}"
  TRAIN=("${launch[@]}" "$exe")
}

# lang_csv FILE: the language list file (one code a line, in the model's order) as a comma list
lang_csv() { grep -v '^[[:space:]]*$' "$1" | tr -d ' \r' | paste -sd, -; }

# langs_with_data DATA LANG_LIST SPLIT: the languages of the list that have SPLIT data in the databin
# (en_XX always), as a comma list
langs_with_data() {
  local data=$1 list=$2 split=$3 l
  for l in $(grep -v '^[[:space:]]*$' "$list"); do
    if [[ $l == en_XX ]] || compgen -G "$data/$split.*$l*.idx" >/dev/null; then echo "$l"; fi
  done | paste -sd, -
}

# pairs_for MODE LANGS_CSV: en-centric pairs for m2m (both ways), o2m (en->x), m2o (x->en)
pairs_for() {
  local mode=$1 langs=$2 out=() l arr
  IFS=, read -r -a arr <<<"$langs"
  for l in "${arr[@]}"; do
    [[ "$l" == en_XX ]] && continue
    case $mode in
      m2m) out+=("en_XX-$l" "$l-en_XX") ;;
      o2m) out+=("en_XX-$l") ;;
      m2o) out+=("$l-en_XX") ;;
      *) die "MODE must be m2m, o2m or m2o, not '$mode'" ;;
    esac
  done
  (IFS=,; echo "${out[*]}")
}

# checked_pairs DATA LANG_LIST SPLIT ARGS...: sets PAIRS to the --lang-pairs of ARGS or else MODE's
# en-centric pairs (m2m by default) over the languages of LANG_LIST with SPLIT data in DATA, and
# checks that the databin has them with one shared dictionary (mtkit check databin)
checked_pairs() {
  local data=$1 list=$2 split=$3
  shift 3
  need_dir "$data" DATA "run mtkit data binarize first"
  need_file "$list" LANG_LIST "one language code a line, in the model's order"
  PAIRS=$(flag_value --lang-pairs "" "$@")
  [[ -n "$PAIRS" ]] || PAIRS=$(pairs_for "${MODE:-m2m}" "$(langs_with_data "$data" "$list" "$split")")
  [[ -n "$PAIRS" ]] || die "no language pairs: no language of $list besides en_XX has $split data in $data"
  run mtkit check databin --databin "$data" --langs "$list" --pairs "$PAIRS" --split "$split"
}

# flag_value FLAG DEFAULT ARGS...: the value fairseq will see for FLAG in ARGS (the last
# "FLAG VALUE" or "FLAG=VALUE" wins, as in argparse), or DEFAULT
flag_value() {
  local flag=$1 value=$2 prev=""
  shift 2
  for a in "$@"; do
    if [[ "$prev" == "$flag" ]]; then value=$a; fi
    if [[ "$a" == "$flag="* ]]; then value=${a#*=}; fi
    prev=$a
  done
  echo "$value"
}

# slurm_train FAMILY RECIPE INPUT LANG_LIST [fairseq-train args ...]: run recipes/FAMILY/RECIPE.sh
# inside a SLURM job with LAUNCH=srun. srun starts one fairseq-train per task and fairseq takes its
# rank, device and rendezvous host from SLURM's variables (SLURM_PROCID, SLURM_LOCALID, the first
# node of SLURM_STEP_NODELIST). With several tasks per node fairseq needs the world size (all tasks)
# and a rendezvous port: added here (from the job id) before ARGS, which may override them.
slurm_train() {
  local family=$1 recipe="${SLURM_SUBMIT_DIR:-.}/recipes/$1/${2:-}.sh"
  if (( $# < 4 )) || [[ ! -f "$recipe" || "$2" == sbatch ]]; then
    die "usage: sbatch recipes/$family/sbatch.sh RECIPE INPUT LANG_LIST [fairseq-train args ...] from the repository's root ($recipe: no such recipe)"
  fi
  [[ -n "${SLURM_NTASKS:-}" ]] || die "not inside a SLURM job (no SLURM_NTASKS): submit with sbatch"
  shift 2
  LAUNCH="srun --kill-on-bad-exit=1" exec bash "$recipe" "$1" "$2" \
    --distributed-world-size "$SLURM_NTASKS" --distributed-port "$(( 10000 + ${SLURM_JOB_ID:-0} % 50000 ))" "${@:3}"
}
