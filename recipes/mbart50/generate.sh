#!/usr/bin/env bash
# Translate the test set of every direction with fairseq-generate and score all of them with
# `mtkit evaluate` (per-direction JSON/CSV/Markdown, aggregates, heat-map and bar chart).
#
#   MODEL       checkpoint to evaluate
#   DATA        databin (binarised test sets, dict.{lang}.txt)
#   LANG_LIST   language list file the model was trained with
#   PAIRS       directions [en<->x for every language of LANG_LIST with test data]
#   REF_DIR     raw text folder with {split}.{src}-{tgt}.{lang} references (mtkit data gettext/ml50 raw/)
#   OUT [eval]  SPLIT [test]  BEAM [5]  BATCH_SIZE [32]  LANG_TOK_STYLE [mbart]  LENPEN [1.0]
#   TRAIN_DIR   raw folder with train files, to group directions by resource class [REF_DIR]
#   DEVICE_ARGS  GEN_ARGS (extra fairseq-generate flags)  EVAL_ARGS (extra mtkit evaluate flags)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"

MODEL=${MODEL:?set MODEL to the checkpoint to evaluate}
DATA=${DATA:?set DATA to the databin}
LANG_LIST=${LANG_LIST:?set LANG_LIST to the model language list}
REF_DIR=${REF_DIR:?set REF_DIR to the raw references folder}
PAIRS=${PAIRS:-}
OUT=${OUT:-eval}
SPLIT=${SPLIT:-test}
BEAM=${BEAM:-5}
BATCH_SIZE=${BATCH_SIZE:-32}
LENPEN=${LENPEN:-1.0}
LANG_TOK_STYLE=${LANG_TOK_STYLE:-mbart}
TRAIN_DIR=${TRAIN_DIR:-$REF_DIR}
DEVICE_ARGS=${DEVICE_ARGS:-}
GEN_ARGS=${GEN_ARGS:-}
EVAL_ARGS=${EVAL_ARGS:-}

need_cmd "$MTKIT"; need_cmd "$FAIRSEQ_GENERATE"
need_file "$MODEL" MODEL; need_dir "$DATA" DATA; need_file "$LANG_LIST" LANG_LIST; need_dir "$REF_DIR" REF_DIR
if [[ -z "$PAIRS" ]]; then
  langs=$(for l in $(grep -v '^[[:space:]]*$' "$LANG_LIST"); do
            if [[ $l == en_XX ]] || compgen -G "$DATA/$SPLIT.*$l*.idx" >/dev/null; then echo "$l"; fi
          done | paste -sd, -)
  PAIRS=$(pairs_for m2m "$langs")
fi
[[ -n "$PAIRS" ]] || die "no directions with $SPLIT data in $DATA"
run "$MTKIT" check databin --databin "$DATA" --langs "$LANG_LIST" --pairs "$PAIRS" --split "$SPLIT"
if [[ -z "$DEVICE_ARGS" ]] && ! "$PYTHON" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  DEVICE_ARGS=--cpu
fi
mkdir -p "$OUT/hyp"
IFS=, read -r -a pair_arr <<<"$PAIRS"
for pair in "${pair_arr[@]}"; do
  src=${pair%-*}; tgt=${pair#*-}
  out="$OUT/hyp/generate-$src-$tgt.txt"
  if [[ -s "$out" && "$out" -nt "$MODEL" ]]; then say "== $src -> $tgt: $out is newer than the model, kept"; continue; fi
  say "== generate $src -> $tgt"
  # --required-batch-size-multiple 1: with the default (8) fairseq-generate silently drops the
  # sentences of a last batch smaller than 8, and the hypotheses no longer cover the test set
  # shellcheck disable=SC2086
  run "$FAIRSEQ_GENERATE" "$DATA" --user-dir "$(user_dir)" $DEVICE_ARGS --path "$MODEL" \
    --task translation_multi_simple_epoch --gen-subset "$SPLIT" --source-lang "$src" --target-lang "$tgt" \
    --lang-dict "$LANG_LIST" --lang-pairs "$PAIRS" --lang-tok-style "$LANG_TOK_STYLE" \
    --encoder-langtok src --decoder-langtok --remove-bpe sentencepiece --truncate-source \
    --beam "$BEAM" --lenpen "$LENPEN" --batch-size "$BATCH_SIZE" --required-batch-size-multiple 1 \
    --data-buffer-size 0 $GEN_ARGS > "$out.tmp"
  mv "$out.tmp" "$out"
  grep -E '^(Generate|BLEU)' "$out" >&2 || true
done
say "== scoring every direction with mtkit evaluate -> $OUT/report"
# shellcheck disable=SC2086
run "$MTKIT" evaluate --hyp-dir "$OUT/hyp" --ref-dir "$REF_DIR" --split "$SPLIT" --train-dir "$TRAIN_DIR" \
    --out "$OUT/report" $EVAL_ARGS
