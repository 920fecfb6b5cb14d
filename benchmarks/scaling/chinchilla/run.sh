#!/usr/bin/env bash
# Reproduce a published fit: Chinchilla's L(N, D) = E + A/N^alpha + B/D^beta on the data Besiroglu
# et al. (2024) re-extracted from Hoffmann et al.'s Figure 4, fitted as both papers describe
# (Huber delta 1e-3 on log L, L-BFGS-B from Hoffmann et al.'s 4500-point grid). See docs/scaling.md
# and PROVENANCE.md (where the input comes from; it is not committed).
#
#   bash benchmarks/scaling/chinchilla/run.sh PATH/TO/svg_extracted_data.csv
#
# Writes benchmarks/scaling/results/chinchilla_{replication,heldout}.{json,txt}, the PNG and the
# comparison table chinchilla_replication.md. About 5 minutes on a quiet 2-core machine.
set -euo pipefail
SRC="$(realpath "${1:?usage: run.sh PATH/TO/svg_extracted_data.csv}")"
cd "$(dirname "$0")/../../.."
WORK="${WORK:-work/chinchilla}"
OUT=benchmarks/scaling/results
mkdir -p "$WORK" "$OUT"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

python benchmarks/scaling/chinchilla/prepare.py "$SRC" "$WORK/runs.csv"
# all 240 runs, Hoffmann et al.'s grid, 200 bootstrap refits for the intervals and the band
mtkit scaling fit "$WORK/runs.csv" --law chinchilla --n params --d tokens --y loss \
  --bootstrap 200 --seed 0 --out "$OUT/chinchilla_replication.json" \
  --plot "$OUT/chinchilla_replication.png" > "$OUT/chinchilla_replication.txt"
python benchmarks/scaling/chinchilla/compare.py "$OUT/chinchilla_replication.json" "$WORK/runs.csv" \
  > "$OUT/chinchilla_replication.md"
# extrapolation: fit on the 200 smallest-D runs, report the error on the 40 largest
mtkit scaling fit "$WORK/runs.csv" --law chinchilla --n params --d tokens --y loss \
  --fit-on 200 --out "$OUT/chinchilla_heldout.json" > "$OUT/chinchilla_heldout.txt"
cat "$OUT/chinchilla_replication.md"
