# Shared helpers for the mBART-50 recipes (sourced, not run).
# Every recipe prints each command before running it and stops at the first failure.
set -euo pipefail

MTKIT=${MTKIT:-mtkit}
PYTHON=${PYTHON:-python}
FAIRSEQ_TRAIN=${FAIRSEQ_TRAIN:-fairseq-train}
FAIRSEQ_GENERATE=${FAIRSEQ_GENERATE:-fairseq-generate}

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

# the --user-dir that registers mtkit's models/tasks and the safe checkpoint loader
user_dir() { "$MTKIT" user-dir; }

# langs_csv FILE_OR_CODES: comma-separated language list from a file (one a line) or a list
langs_csv() {
  if [[ -f "$1" ]]; then grep -v '^[[:space:]]*$' "$1" | tr -d ' \r' | paste -sd, -; else echo "$1" | tr ' ' ','; fi
}

# pairs_for MODE LANGS_CSV [PIVOT]: en-centric pairs for m2m (both ways), o2m (en->x), m2o (x->en)
pairs_for() {
  local mode=$1 langs=$2 pivot=${3:-en_XX} out=() l
  IFS=, read -r -a arr <<<"$langs"
  for l in "${arr[@]}"; do
    [[ "$l" == "$pivot" ]] && continue
    case $mode in
      m2m) out+=("$pivot-$l" "$l-$pivot") ;;
      o2m) out+=("$pivot-$l") ;;
      m2o) out+=("$l-$pivot") ;;
      *) die "MODE must be m2m, o2m or m2o, not '$mode'" ;;
    esac
  done
  (IFS=,; echo "${out[*]}")
}
