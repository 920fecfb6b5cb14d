#!/usr/bin/env bash
# PBT vs random search vs fixed hyperparameters on ML50-mini (see experiment.py for the design).
#
#   bash benchmarks/pbt/mini/run.sh            # CPU size (about an hour on 2 quiet cores)
#   bash benchmarks/pbt/mini/run.sh --gpu      # the GPU size (one GPU shared by 4 trials)
#   bash benchmarks/pbt/mini/run.sh --dry      # a few updates: checks the whole pipeline
#
# Step 1 builds the ML50-mini data as recipes/mini/run.sh's data stage does (gettext catalogs of this
# machine, 8 languages, 2k shared SentencePiece, <= 40 pieces), in PBT_WORK [work/pbt-mini]; step 2
# runs the three systems with mtkit tune and scores them on the test split. A killed run resumes:
# run the same command again (finished systems are reused, unfinished ones continue).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
if ! command -v mtkit >/dev/null 2>&1 && [[ -x "$repo/.venv/bin/mtkit" ]]; then export PATH="$repo/.venv/bin:$PATH"; fi
PY=$(dirname "$(command -v mtkit)")/python
WORK=${PBT_WORK:-work/pbt-mini}
LANGS=de_DE,en_XX,es_XX,fr_XX,ro_RO,si_LK,sw_KE,gl_ES
mkdir -p "$WORK"
if [[ ! -f "$WORK/bin/databin/dict.en_XX.txt" ]]; then
  mtkit data gettext --out "$WORK/data" --langs "$LANGS" --valid-size 200 --test-size 200
  for f in "$WORK"/data/raw/train.*; do
    if (( $(wc -l <"$f") > 60000 )); then head -n 60000 "$f" >"$f.tmp" && mv "$f.tmp" "$f"; fi
  done
  echo "$LANGS" | tr ',' '\n' >"$WORK/langs.txt"
  mtkit data binarize --raw "$WORK/data/raw" --out "$WORK/bin" --spm-vocab-size 2000 --max-pieces 40 \
      --langs-file "$WORK/langs.txt"
fi
exec "$PY" "$here/experiment.py" --work "$WORK" "$@"
