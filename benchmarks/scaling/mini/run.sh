#!/usr/bin/env bash
# The mini downstream scaling sweep of this folder (issue 13): recipes/scaling/run.sh, mini profile,
# results written here (runs.csv, fits/, overview.png, summary.md, sweep.json). Resumable.
#   nice -n 15 bash benchmarks/scaling/mini/run.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec bash "$here/../../../recipes/scaling/run.sh" --profile mini --out "$here" \
    --command "bash benchmarks/scaling/mini/run.sh $*" "$@"
