#!/usr/bin/env bash
# The corpus of the MoE seed-claim experiments (moe_vs_dense/, global_balance/): ML50-mini-style
# data from this machine's gettext catalogs, 7 languages with English, 14 directions:
#   high  fr_XX de_DE   (>= 30k training pairs)
#   mid   ro_RO gl_ES   (5k-30k)
#   low   si_LK xh_ZA az_AZ (< 5k, 1.3k-1.7k pairs)
# valid capped at VALID lines per direction, test at TEST lines (gettext orders held-out lines by
# a hash of the English side, so the first lines are a pseudo-random subset); one shared
# SentencePiece model of SPM_VOCAB pieces; training pairs longer than MAX_PIECES pieces dropped.
#
#   benchmarks/seed_claims/data.sh [WORK]        (default WORK: work/seed_claims/data)
#
# Writes WORK/raw (text, the references for mtkit compare), WORK/bin/databin (+ langs.txt),
# WORK/bin/spm.model, WORK/resource_classes.txt ("CODE CLASS # training pairs", what
# mtkit compare --resource-classes reads) and WORK/.done. Re-running with WORK/.done
# present does nothing. Environment: VALID [200], TEST [400], SPM_VOCAB [2000], MAX_PIECES [40],
# LANGS [the 8 above; the extension experiment uses its own list].
set -euo pipefail
WORK=${1:-work/seed_claims/data}
VALID=${VALID:-200}
TEST=${TEST:-400}
SPM_VOCAB=${SPM_VOCAB:-2000}
MAX_PIECES=${MAX_PIECES:-40}
LANGS=${LANGS:-en_XX,fr_XX,de_DE,ro_RO,gl_ES,si_LK,xh_ZA,az_AZ}
if [[ -f "$WORK/.done" ]]; then echo "data ready in $WORK"; exit 0; fi
mkdir -p "$WORK"
mtkit data gettext --out "$WORK/gettext" --langs "$LANGS" --valid-size "$VALID" --test-size "$TEST"
rm -rf "$WORK/raw" && mkdir -p "$WORK/raw"
for f in "$WORK"/gettext/raw/*; do
  name=$(basename "$f")
  case $name in
    valid.*) head -n "$VALID" "$f" >"$WORK/raw/$name" ;;
    test.*) head -n "$TEST" "$f" >"$WORK/raw/$name" ;;
    *) cp "$f" "$WORK/raw/$name" ;;
  esac
done
echo "$LANGS" | tr ',' '\n' >"$WORK/langs.txt"
mtkit data binarize --raw "$WORK/raw" --out "$WORK/bin" --spm-vocab-size "$SPM_VOCAB" \
  --max-pieces "$MAX_PIECES" --langs-file "$WORK/langs.txt"
# resource class of each language by its training pairs with English
for f in "$WORK"/raw/train.en_XX-*.en_XX; do
  lang=${f##*en_XX-}; lang=${lang%.en_XX}
  n=$(wc -l <"$f")
  if (( n >= 30000 )); then c=high; elif (( n >= 5000 )); then c=mid; else c=low; fi
  printf '%s %s  # %s training pairs with en_XX\n' "$lang" "$c" "$n"
done >"$WORK/resource_classes.txt"
date -u +%FT%TZ >"$WORK/.done"
echo "data ready in $WORK"
