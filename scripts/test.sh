#!/usr/bin/env bash
# Set up (with the test extras) and run the test suite. Extra arguments go to pytest, e.g.
#   bash scripts/test.sh -m "not slow"     # the quick subset
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
VENV="${MTKIT_VENV:-.venv}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "$VENV/bin/python" -m pytest -q --durations=20 --timeout=900 "$@"
