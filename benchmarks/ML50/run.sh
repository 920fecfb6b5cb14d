#!/usr/bin/env bash
# Reproduce the ML50 table (Tang et al. 2020) for one checkpoint on a GPU machine:
#   binarise the ML50 test sets with the model's SentencePiece model and dictionary, generate every
#   direction, score with mtkit evaluate, print the per-language table (x->en and en->x, grouped by
#   resource class) next to the averages published in the paper's abstract.
#
#   ML50_DIR    output of `mtkit data ml50 --out ML50_DIR` (raw/ and clean/)
#   MODEL_DIR   a model folder as in the released tarballs: model.pt, ML50_langs.txt (or langs.txt),
#               sentence.bpe.model (or spm.model), dict.en_XX.txt (or dict.txt)
#               e.g. mbart50.ft.nn (many-to-many), mbart50.ft.1n (en->x), mbart50.ft.n1 (x->en)
#   DIRECTIONS  m2m [default] | o2m | m2o  (which directions to generate)
#   OUT         [benchmarks/ML50/results/$(basename MODEL_DIR)]
#   BIN         [ML50_DIR/bin-$(basename MODEL_DIR)]: databin made with the model's SPM + dictionary
#   BASELINE    optional scores.json of bilingual-from-scratch models (mtkit evaluate --out), to
#               compare with the published +9.3 BLEU
#   LANG_TOK_STYLE [mbart]  BEAM [5]  BATCH_SIZE [32]  LENPEN [1.0]  TRUST=1 for --trust-checkpoint checks
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$repo/recipes/common.sh"

ML50_DIR=${ML50_DIR:?set ML50_DIR to the output folder of mtkit data ml50}
MODEL_DIR=${MODEL_DIR:?set MODEL_DIR to the model folder (model.pt, ML50_langs.txt, sentence.bpe.model, dict)}
name=$(basename "$MODEL_DIR")
DIRECTIONS=${DIRECTIONS:-m2m}
OUT=${OUT:-$here/results/$name}
BIN=${BIN:-$ML50_DIR/bin-$name}
BASELINE=${BASELINE:-}
LANG_TOK_STYLE=${LANG_TOK_STYLE:-mbart} BEAM=${BEAM:-5} BATCH_SIZE=${BATCH_SIZE:-32} LENPEN=${LENPEN:-1.0}

first() { local f; for f in "$@"; do [[ -f "$f" ]] && { echo "$f"; return; }; done; echo "$1"; }
MODEL=$(first "$MODEL_DIR/model.pt" "$MODEL_DIR/checkpoint_best.pt" "$MODEL_DIR/checkpoint_last.pt")
LANG_LIST=$(first "$MODEL_DIR/ML50_langs.txt" "$MODEL_DIR/langs.txt")
SPM=$(first "$MODEL_DIR/sentence.bpe.model" "$MODEL_DIR/spm.model")
DICT=$(first "$MODEL_DIR/dict.en_XX.txt" "$MODEL_DIR/dict.txt")
need_dir "$ML50_DIR" ML50_DIR "run mtkit data ml50 --out $ML50_DIR first"
for f in "$MODEL" "$LANG_LIST" "$SPM" "$DICT"; do need_file "$f" MODEL_DIR; done
raw=$ML50_DIR/clean; [[ -d "$raw" ]] || raw=$ML50_DIR/raw
need_dir "$raw" "ML50_DIR/clean" "mtkit data ml50 did not finish"
trust=(); [[ "${TRUST:-0}" == 1 ]] && trust=(--trust-checkpoint)

say "=== [check] $MODEL against $DICT + $(grep -c . "$LANG_LIST") language tokens"
run mtkit check vocab --checkpoint "$MODEL" --dict "$DICT" --langs "$LANG_LIST" "${trust[@]}"

if [[ ! -f "$BIN/.done" ]]; then
  say "=== [binarize] $raw with $SPM and $DICT -> $BIN"
  run mtkit data binarize --raw "$raw" --out "$BIN" --spm-model "$SPM" --dict "$DICT" --langs-file "$LANG_LIST"
  touch "$BIN/.done"
fi

say "=== [generate + evaluate] $DIRECTIONS"
gen=(--lang-tok-style "$LANG_TOK_STYLE" --beam "$BEAM" --batch-size "$BATCH_SIZE" --lenpen "$LENPEN")
MODE=$DIRECTIONS OUT=$OUT TRAIN_DIR=$raw \
  run bash "$repo/recipes/mbart50/generate.sh" "$MODEL" "$BIN/databin" "$LANG_LIST" "$ML50_DIR/raw" "${gen[@]}"

say "=== [table]"
base=(); [[ -n "$BASELINE" ]] && base=(--baseline "$BASELINE")
run python "$here/table.py" --scores "$OUT/report/scores.json" --name "$name" "${base[@]}" --out "$OUT/table.md"
