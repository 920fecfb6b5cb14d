#!/usr/bin/env bash
# Translate the test set of every direction with fairseq-generate, then score all of them with
# `mtkit evaluate` (per-direction JSON/CSV/Markdown, averages, heat-map and bar chart).
#
#   recipes/mbart50/generate.sh MODEL DATA LANG_LIST REF_DIR [fairseq-generate args ...]
#
#   MODEL      checkpoint to evaluate
#   DATA       databin with the binarised test sets and dict.{lang}.txt
#   LANG_LIST  the language list file the model was trained with (fixes the language-token ids)
#   REF_DIR    raw text folder with {split}.{src}-{tgt}.{lang} references (raw/ of mtkit data
#              gettext or ml50)
#   args       any fairseq-generate flags; they come last, so they override the defaults below
#              (e.g. --beam 4, --batch-size 64, --gen-subset valid, --lang-tok-style multilingual).
#              --lang-pairs also chooses the directions to generate.
#
# Environment (mtkit's inputs only):
#   MODE  m2m [default] (en<->x) | o2m (en->x) | m2o (x->en): the directions, over the languages of
#         LANG_LIST with test data in DATA, unless --lang-pairs is given
#   OUT   output folder [eval]: OUT/hyp/generate-{src}-{tgt}.txt and OUT/report/ (mtkit evaluate).
#         A direction whose output is newer than MODEL is kept, not generated again.
#   TRAIN_DIR  folder with the train.{src}-{tgt}.{lang} files whose line counts give each
#         direction's resource class in the report [REF_DIR]
#
# --required-batch-size-multiple 1: with fairseq's default (8) the sentences of a last batch
# smaller than 8 are dropped and the hypotheses no longer cover the test set.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
need_args "${BASH_SOURCE[0]}" 4 "$@"
MODEL=$1 DATA=$2 LANG_LIST=$3 REF_DIR=$4
shift 4
OUT=${OUT:-eval}
TRAIN_DIR=${TRAIN_DIR:-$REF_DIR}

need_cmd mtkit; need_cmd fairseq-generate
need_file "$MODEL" MODEL; need_dir "$REF_DIR" REF_DIR
split=$(flag_value --gen-subset test "$@")
checked_pairs "$DATA" "$LANG_LIST" "$split" "$@"
device_flags generate
mkdir -p "$OUT/hyp"
IFS=, read -r -a directions <<<"$PAIRS"
for pair in "${directions[@]}"; do
  src=${pair%-*} tgt=${pair#*-}
  out="$OUT/hyp/generate-$src-$tgt.txt"
  if [[ -s "$out" && "$out" -nt "$MODEL" ]]; then say "== $src -> $tgt: $out is newer than the model, kept"; continue; fi
  say "== generate $src -> $tgt"
  run fairseq-generate "$DATA" --user-dir "$(user_dir)" "${DEVICE[@]}" --path "$MODEL" \
    --task translation_multi_simple_epoch --gen-subset test --source-lang "$src" --target-lang "$tgt" \
    --lang-dict "$LANG_LIST" --lang-pairs "$PAIRS" --lang-tok-style mbart \
    --encoder-langtok src --decoder-langtok --remove-bpe sentencepiece --truncate-source \
    --beam 5 --lenpen 1.0 --batch-size 32 --required-batch-size-multiple 1 --data-buffer-size 0 \
    "$@" > "$out.tmp"
  mv "$out.tmp" "$out"
  grep -E '^(Generate|BLEU)' "$out" >&2 || true
done
say "== scoring every direction with mtkit evaluate -> $OUT/report"
run mtkit evaluate --hyp-dir "$OUT/hyp" --ref-dir "$REF_DIR" --split "$split" --train-dir "$TRAIN_DIR" \
    --out "$OUT/report"
