#!/usr/bin/env bash
# Set up (with the test extras) and run the test suite. Extra arguments go to pytest, e.g.
#   bash scripts/test.sh -m "not slow"     # the quick subset
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
VENV="${MTKIT_VENV:-.venv}"
# transformers' own fairseq NLLB-MoE converter (last released in 4.46.3): a test reads its key renaming
# from the wheel to check mtkit's MoE checkpoints against it (the wheel is not installed)
ref="$VENV/share/mtkit-test/transformers-4.46.3-py3-none-any.whl"
if [ ! -f "$ref" ]; then
  echo "==> [test] downloading the transformers 4.46.3 wheel (reference NLLB-MoE converter) to $ref"
  "$VENV/bin/python" -m pip download -q --no-deps transformers==4.46.3 -d "$(dirname "$ref")"
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "$VENV/bin/python" -m pytest -q --durations=20 --timeout=900 "$@"
