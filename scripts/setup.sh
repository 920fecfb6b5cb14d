#!/usr/bin/env bash
# Set up mtkit in a virtual environment on a fresh machine.
#
#   bash scripts/setup.sh            # runtime install (mtkit + fairseq + torch)
#   bash scripts/setup.sh --test     # plus the test, CTranslate2, Hugging Face, Ray Tune and dev extras
#
# Environment:
#   MTKIT_VENV                venv folder (default: .venv in the repository)
#   PYTHON                    interpreter used to create it (default: python3; needs >= 3.10)
#   MTKIT_EXTRAS              extras to install, e.g. "ct2,hf" (--test sets test,ct2,hf,dev,ja,ko,tune,lid,compare)
#   MTKIT_TORCH_VERSION       torch version installed on machines without CUDA (default 2.13.0)
#   MTKIT_TORCH_INDEX         index of CPU-only torch wheels (default: PyTorch's CPU index)
#   MTKIT_FAIRSEQ_EXTENSIONS  text (default: the 3 extensions text work needs) or all (adds libnat,
#                             libbase and fairseq's example operator: several more minutes)
#   MTKIT_WHEELHOUSE          where the fairseq wheel built here is kept for later setups
#                             (default: ~/.cache/mtkit/wheels)
#   MTKIT_SETUP_TIMES         append one JSON line per step (wall and CPU seconds) to this file
#
# Order: on a machine without a GPU the CPU build of torch goes in first, so that nothing later
# pulls a multi-GB CUDA build. fairseq-fixed is then built from its sdist against that torch by
# scripts/setup_helper.py (fairseq's own setup.py, only the extensions mtkit needs, compiled in
# parallel, without the torchaudio requirement: docs/install.md says why), while pip installs the
# other dependencies. pip runs with --no-compile: modules are byte-compiled when first imported.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${MTKIT_VENV:-.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${MTKIT_EXTRAS:-tensorboard}"
TORCH_VERSION="${MTKIT_TORCH_VERSION:-2.13.0}"
TORCH_CPU_INDEX="${MTKIT_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
FAIRSEQ_EXTENSIONS="${MTKIT_FAIRSEQ_EXTENSIONS:-text}"
WHEELHOUSE="${MTKIT_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/mtkit/wheels}"
TIMES="${MTKIT_SETUP_TIMES:-}"

for arg in "$@"; do
  case "$arg" in
    --test) EXTRAS="test,ct2,hf,dev,ja,ko,tune,lid,compare" ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/!p}' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done
case "$FAIRSEQ_EXTENSIONS" in
  text|all) ;;
  *) echo "setup.sh: MTKIT_FAIRSEQ_EXTENSIONS must be text or all, not '$FAIRSEQ_EXTENSIONS'" >&2; exit 2 ;;
esac

TMPD="$(mktemp -d)"
BUILD_PID=""
cleanup() {
  if [ -n "$BUILD_PID" ]; then kill "$BUILD_PID" 2>/dev/null || true; fi
  rm -rf "$TMPD"
}
trap cleanup EXIT

# ---- per-step timing: wall seconds and the CPU seconds of finished child processes ----------
now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "${EPOCHREALTIME/,/.}"; else date +%s.%N; fi; }
snap_cpu() {  # user+sys of this shell's waited-for children; `times` must run in this shell, not $(...)
  times >"$TMPD/times"
  CPU_NOW="$(awk 'NR==2 { s=0; for (i=1; i<=NF; i++) { split($i, a, "m"); sub("s", "", a[2]); s += a[1]*60 + a[2] } printf "%.2f", s }' "$TMPD/times")"
}
SETUP_T0="$(now)"
STEP=""
SUMMARY=""
end_step() {
  [ -n "$STEP" ] || return 0
  local wall cpu_s
  snap_cpu
  wall="$(awk -v a="$STEP_T0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
  cpu_s="$(awk -v a="$STEP_CPU0" -v b="$CPU_NOW" 'BEGIN { printf "%.1f", b - a }')"
  SUMMARY+="$(printf '\n  %7.1f s wall %7.1f s cpu  %s' "$wall" "$cpu_s" "$STEP")"
  if [ -n "$TIMES" ]; then
    printf '{"step": "%s", "wall_s": %s, "cpu_s": %s}\n' "$STEP" "$wall" "$cpu_s" >>"$TIMES"
  fi
  STEP=""
}
step() {  # step KEY MESSAGE...
  end_step
  STEP="$1"; shift
  echo "==> [setup] $*"
  STEP_T0="$(now)"
  snap_cpu
  STEP_CPU0="$CPU_NOW"
}

"$PY" - <<'PYCHECK' || { echo "setup.sh: Python >= 3.10 is required (set PYTHON=...)" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)
PYCHECK

if [ ! -x "$VENV/bin/python" ]; then
  step venv "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip)
PIPI=("${PIP[@]}" install -q --no-compile)
installed_version() {  # version of an installed distribution, without importing it
  "$VPY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: sys.exit(1)" "$1" 2>/dev/null
}

step build-tools "pip, setuptools, Cython and numpy (fairseq's build needs them)"
"${PIPI[@]}" --upgrade pip "setuptools>=77" cython "numpy>=2.3; python_version >= '3.11'" \
  "numpy>=1.24; python_version < '3.11'"  # 2.3: no object-dtype scalar() crash (numpy #28316)

if "$VPY" -c "import sys, importlib.metadata as m; v=tuple(int(x) for x in m.version('torch').split('+')[0].split('.')[:2]); sys.exit(0 if v >= (2, 6) else 1)" 2>/dev/null; then
  step torch "torch already installed: $(installed_version torch)"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  step torch "GPU found: installing the default (CUDA) torch build"
  "${PIPI[@]}" "torch>=2.6"
else
  step torch "no GPU: installing the CPU build of torch $TORCH_VERSION"
  if "$VPY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)" \
      "$TORCH_CPU_INDEX/torch/" >/dev/null 2>&1; then
    "${PIPI[@]}" "torch==$TORCH_VERSION" --index-url "$TORCH_CPU_INDEX"
  else
    # offline or mirrored machines: pip's configured indexes / find-links must provide the +cpu wheel
    echo "    CPU index $TORCH_CPU_INDEX not reachable; using pip's configured indexes"
    "${PIPI[@]}" "torch==$TORCH_VERSION"
  fi
  if [ "$("$VPY" -c 'import torch; print(torch.version.cuda or "cpu")')" != "cpu" ]; then
    echo "setup.sh: warning: a CUDA build of torch was installed on a machine without a GPU;" \
         "set MTKIT_TORCH_INDEX to a reachable CPU wheel index to avoid the large download" >&2
  fi
fi
# torch and numpy stay as they are from here on (nothing may swap them for another build)
printf 'torch==%s\nnumpy==%s\n' "$(installed_version torch)" "$(installed_version numpy)" >"$TMPD/constraints.txt"

"$VPY" scripts/setup_helper.py requirements --extras "$EXTRAS" --exclude fairseq-fixed \
  >"$TMPD/mtkit-requirements.txt"

: >"$TMPD/fairseq-requirements.txt"
NEED_FAIRSEQ=1
if "$VPY" -c "import fairseq" 2>/dev/null; then
  NEED_FAIRSEQ=0
  step fairseq-fetch "fairseq already installed: $(installed_version fairseq-fixed)"
else
  step fairseq-fetch "fairseq-fixed: a wheel built here before, or the sdist ($WHEELHOUSE)"
  "$VPY" scripts/setup_helper.py fairseq-fetch --wheelhouse "$WHEELHOUSE" \
    --extensions "$FAIRSEQ_EXTENSIONS" --requirements "$TMPD/fairseq-requirements.txt"
fi

if [ "$NEED_FAIRSEQ" = 1 ]; then
  step dependencies "dependencies, while fairseq's $FAIRSEQ_EXTENSIONS extensions compile (log: $TMPD/fairseq-build.log)"
  "$VPY" scripts/setup_helper.py fairseq-build --wheelhouse "$WHEELHOUSE" --extensions "$FAIRSEQ_EXTENSIONS" \
    >"$TMPD/fairseq-wheel" 2>"$TMPD/fairseq-build.log" &
  BUILD_PID=$!
else
  step dependencies "dependencies"
fi
"${PIPI[@]}" -c "$TMPD/constraints.txt" -r "$TMPD/fairseq-requirements.txt" -r "$TMPD/mtkit-requirements.txt"

if [ "$NEED_FAIRSEQ" = 1 ]; then
  step fairseq "fairseq-fixed: waiting for its build, then installing the wheel"
  if ! wait "$BUILD_PID"; then
    BUILD_PID=""
    echo "setup.sh: building fairseq-fixed failed; the end of its log:" >&2
    tail -n 40 "$TMPD/fairseq-build.log" >&2
    exit 1
  fi
  BUILD_PID=""
  "${PIPI[@]}" --no-deps "$(cat "$TMPD/fairseq-wheel")"
fi

step mtkit "mtkit itself (editable)"
# (setuptools warns on every editable install that a folder named like the package may shadow it:
# here that folder is the package)
PYTHONWARNINGS="ignore:Editable installation" "${PIPI[@]}" --no-deps --no-build-isolation -e .

# A venv set up by an earlier setup.sh holds pip's torchaudio (pulled by fairseq-fixed), a CUDA
# build that cannot be imported next to a CPU torch; transformers then crashes when it imports it.
# Nothing in fairseq's text tasks or in mtkit uses torchaudio: remove a torchaudio that is broken.
if installed_version torchaudio >/dev/null && ! "$VPY" -c "import torchaudio" >/dev/null 2>&1; then
  step torchaudio "removing torchaudio $(installed_version torchaudio): it does not import with torch $(installed_version torch)"
  "${PIP[@]}" uninstall -q -y torchaudio
fi

step doctor "checking the install (mtkit doctor)"
"$VENV/bin/mtkit" doctor
end_step
TOTAL="$(awk -v a="$SETUP_T0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
echo "==> [setup] done in $TOTAL s:$SUMMARY"
if [ -n "$TIMES" ]; then
  snap_cpu
  printf '{"step": "total", "wall_s": %s, "cpu_s": %s}\n' "$TOTAL" "$CPU_NOW" >>"$TIMES"
fi
echo "==> [setup] Activate with: source $VENV/bin/activate"
