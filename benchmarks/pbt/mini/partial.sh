#!/usr/bin/env bash
# Copy what an unfinished CPU run has measured so far into benchmarks/pbt/mini/cpu-partial/:
# for each system folder under PBT_WORK/runs-cpu, `mtkit tune --report` rewrites trials.csv,
# events.csv, best.json, summary.md and the plots from the trials' reports, then they are copied.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${PBT_WORK:-work/pbt-mini}
dest="$here/cpu-partial"
for dir in "$WORK"/runs-cpu/*/; do
  name=$(basename "$dir")
  [[ -f "$dir/tune_spec.json" ]] || continue
  mtkit tune --report --out "$dir" >/dev/null || { echo "partial.sh: $name has no result yet" >&2; continue; }
  mkdir -p "$dest/$name"
  for f in trials.csv events.csv best.json summary.md fitness.png schedules.png; do
    [[ -f "$dir/$f" ]] && cp "$dir/$f" "$dest/$name/$f"
  done
done
uptime >"$dest/load.txt"
