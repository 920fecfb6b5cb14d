#!/usr/bin/env bash
# Set up mtkit in a virtual environment on a fresh machine.
#
#   bash scripts/setup.sh            # runtime install (mtkit + fairseq + torch)
#   bash scripts/setup.sh --test     # plus the test, CTranslate2, Hugging Face and dev extras
#
# Environment:
#   MTKIT_VENV           venv folder (default: .venv in the repository)
#   PYTHON               interpreter used to create it (default: python3; needs >= 3.10)
#   MTKIT_EXTRAS         extras to install, e.g. "ct2,hf" (--test sets test,ct2,hf,dev,ja,ko)
#   MTKIT_TORCH_VERSION  torch version installed on machines without CUDA (default 2.13.0)
#   MTKIT_TORCH_INDEX    index of CPU-only torch wheels (default: PyTorch's CPU index)
#
# Why the order matters: on a machine without a GPU we install the CPU build of torch first, so
# that nothing later pulls a multi-GB CUDA build. fairseq-fixed is then built from source against
# that torch with --no-build-isolation (an isolated build would download a second, CUDA, torch
# into the build environment and compile fairseq's extensions against the wrong ABI).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${MTKIT_VENV:-.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${MTKIT_EXTRAS:-tensorboard}"
TORCH_VERSION="${MTKIT_TORCH_VERSION:-2.13.0}"
TORCH_CPU_INDEX="${MTKIT_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
FAIRSEQ_REQ="fairseq-fixed==0.12.3.1"

for arg in "$@"; do
  case "$arg" in
    --test) EXTRAS="test,ct2,hf,dev,ja,ko" ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

step() { echo "==> [setup] $*"; }

"$PY" - <<'PYCHECK' || { echo "setup.sh: Python >= 3.10 is required (set PYTHON=...)" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)
PYCHECK

if [ ! -x "$VENV/bin/python" ]; then
  step "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip setuptools wheel cython "numpy>=1.24"

if "$VENV/bin/python" -c "import torch, sys; v=tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(0 if v >= (2, 6) else 1)" 2>/dev/null; then
  step "torch already installed: $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  step "GPU found: installing the default (CUDA) torch build"
  "${PIP[@]}" install "torch>=2.6"
else
  step "no GPU: installing the CPU build of torch $TORCH_VERSION"
  if "$VENV/bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)" \
      "$TORCH_CPU_INDEX/torch/" >/dev/null 2>&1; then
    "${PIP[@]}" install "torch==$TORCH_VERSION" --index-url "$TORCH_CPU_INDEX"
  else
    # offline or mirrored machines: pip's configured indexes / find-links must provide the +cpu wheel
    step "CPU index $TORCH_CPU_INDEX not reachable; using pip's configured indexes"
    "${PIP[@]}" install "torch==$TORCH_VERSION"
  fi
  if [ "$("$VENV/bin/python" -c 'import torch; print(torch.version.cuda or "cpu")')" != "cpu" ]; then
    echo "setup.sh: warning: a CUDA build of torch was installed on a machine without a GPU;" \
         "set MTKIT_TORCH_INDEX to a reachable CPU wheel index to avoid the large download" >&2
  fi
fi

if "$VENV/bin/python" -c "import fairseq" 2>/dev/null; then
  step "fairseq already installed: $("$VENV/bin/python" -c 'import fairseq; print(fairseq.__version__)')"
else
  step "building $FAIRSEQ_REQ against the installed torch (about 3 minutes on 2 cores; cached afterwards)"
  "${PIP[@]}" install --no-build-isolation "$FAIRSEQ_REQ"
fi

TARGET="."
[ -n "$EXTRAS" ] && TARGET=".[$EXTRAS]"
step "installing mtkit ($TARGET)"
"${PIP[@]}" install -q -e "$TARGET"

step "checking the install"
"$VENV/bin/mtkit" doctor
echo "==> [setup] done. Activate with: source $VENV/bin/activate"
