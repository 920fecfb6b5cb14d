#!/usr/bin/env bash
# ML50-mini: the whole mBART-50 path on a laptop, from the machine's gettext catalogs.
#
#   1 data       ML50-mini from /usr/share/locale (high: de/es/fr, mid: ro/gl, low: si, very low: sw)
#                + one shared 2k SentencePiece model, parallel and monolingual databins
#   2 pretrain   tiny mBART, multilingual denoising on the first 6 of the 8 languages
#   3 extend     mtkit extend-langs: add sw_KE and gl_ES (gl_ES initialised from es_XX)
#   4 continue   continued denoising pretraining on all 8 languages
#   5 finetune   many-to-many finetuning (en<->x, 14 directions)
#   6 bilingual  bilingual-from-scratch baselines for the low-resource directions (si_LK, sw_KE)
#   7 evaluate   fairseq-generate + mtkit evaluate for every system; comparison report + plots;
#                benchmarks/ML50/mini/results.json
#   8 translate  a few sentences with mtkit translate
#
# Default: about 30 minutes on 2 CPU cores. Time budgets (seconds of training per stage) scale with
# MINI_SCALE (e.g. MINI_SCALE=4 for a 2-hour run, 0.02 for a smoke test); each can also be set alone.
# A re-run skips the stages whose marker WORK/.done/STAGE exists (delete it to redo that stage).
#
# Environment (defaults in brackets):
#   MINI_WORK [work/mini]      everything goes here
#   MINI_SCALE [1]             multiplies every budget below and the data caps
#   MINI_PRETRAIN_SECONDS [180] MINI_CONTINUE_SECONDS [120] MINI_FINETUNE_SECONDS [600]
#   MINI_BILINGUAL_SECONDS [60, per direction]  (training 1140 s of ~27 min; the rest: data ~2 min,
#   fairseq start-ups ~2 min, generation + scoring of 18 directions ~4 min)
#   MINI_OLD_LANGS [de_DE,en_XX,es_XX,fr_XX,ro_RO,si_LK]  MINI_NEW_LANGS [sw_KE,gl_ES]
#   MINI_INIT_FROM [gl_ES=es_XX]  MINI_BILINGUAL [si_LK,sw_KE]
#   MINI_SPM_VOCAB [2000] MINI_MAX_PIECES [40] MINI_MAX_TRAIN [60000*scale lines per direction]
#   MINI_TEST_SIZE [200*scale, at least 20] MINI_BEAM [4] MINI_THREADS [nproc]
#   MINI_TRANSLATE_TO [fr_XX,si_LK,gl_ES]: targets of the translate stage
#   MINI_{PRETRAIN,CONTINUE,FINETUNE,BILINGUAL}_UPDATES [none]: optional --max-update caps
#   MINI_PUBLISH [1 when MINI_SCALE=1]: copy results.json to benchmarks/ML50/mini/results.json
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
mb="$repo/recipes/mbart50"
source "$mb/common.sh"

# the venv next to the repo, if the caller did not activate one
if ! command -v mtkit >/dev/null 2>&1 && [[ -x "$repo/.venv/bin/mtkit" ]]; then export PATH="$repo/.venv/bin:$PATH"; fi
need_cmd mtkit; need_cmd fairseq-train; need_cmd fairseq-generate
PYTHON=$(dirname "$(command -v mtkit)")/python
export PYTHON

WORK=$(mkdir -p "${MINI_WORK:-work/mini}" && cd "${MINI_WORK:-work/mini}" && pwd)
SCALE=${MINI_SCALE:-1}
scaled() { "$PYTHON" -c "import sys; print(max(int(sys.argv[3]), int(round(float(sys.argv[1]) * float(sys.argv[2])))))" "$1" "$SCALE" "${2:-1}"; }
hours() { "$PYTHON" -c "import sys; print(f'{float(sys.argv[1]) / 3600:.6f}')" "$1"; }
PRETRAIN_S=${MINI_PRETRAIN_SECONDS:-$(scaled 180)}
CONTINUE_S=${MINI_CONTINUE_SECONDS:-$(scaled 120)}
FINETUNE_S=${MINI_FINETUNE_SECONDS:-$(scaled 600)}
BILINGUAL_S=${MINI_BILINGUAL_SECONDS:-$(scaled 60)}
OLD_LANGS=${MINI_OLD_LANGS:-de_DE,en_XX,es_XX,fr_XX,ro_RO,si_LK}
NEW_LANGS=${MINI_NEW_LANGS:-sw_KE,gl_ES}
INIT_FROM=${MINI_INIT_FROM-gl_ES=es_XX}
BILINGUAL=${MINI_BILINGUAL:-si_LK,sw_KE}
SPM_VOCAB=${MINI_SPM_VOCAB:-2000}
MAX_PIECES=${MINI_MAX_PIECES:-40}
MAX_TRAIN=${MINI_MAX_TRAIN:-$(scaled 60000 200)}
TEST_SIZE=${MINI_TEST_SIZE:-$(scaled 200 20)}
BEAM=${MINI_BEAM:-4}
TRANSLATE_TO=${MINI_TRANSLATE_TO:-fr_XX,si_LK,gl_ES}
# optional update caps (default: none, the time budgets decide), e.g. for equal-update comparisons
PRETRAIN_UPDATES=${MINI_PRETRAIN_UPDATES:-100000}
CONTINUE_UPDATES=${MINI_CONTINUE_UPDATES:-100000}
FINETUNE_UPDATES=${MINI_FINETUNE_UPDATES:-100000}
BILINGUAL_UPDATES=${MINI_BILINGUAL_UPDATES:-100000}
# the effective settings, recorded in results.json by report.py
export MINI_SCALE=$SCALE MINI_PRETRAIN_SECONDS=$PRETRAIN_S MINI_CONTINUE_SECONDS=$CONTINUE_S \
  MINI_FINETUNE_SECONDS=$FINETUNE_S MINI_BILINGUAL_SECONDS=$BILINGUAL_S MINI_OLD_LANGS=$OLD_LANGS \
  MINI_NEW_LANGS=$NEW_LANGS MINI_SPM_VOCAB=$SPM_VOCAB MINI_MAX_PIECES=$MAX_PIECES MINI_MAX_TRAIN=$MAX_TRAIN \
  MINI_TEST_SIZE=$TEST_SIZE MINI_BEAM=$BEAM
if [[ "$SCALE" == 1 ]]; then PUBLISH=${MINI_PUBLISH:-1}; else PUBLISH=${MINI_PUBLISH:-0}; fi
export OMP_NUM_THREADS=${MINI_THREADS:-$(nproc)}
ALL_LANGS="$OLD_LANGS,$NEW_LANGS"

# the tiny mBART: 2+2 layers, d=128 (a 2k SPM and <=40-piece segments keep it learning on 2 cores)
TINY_ARCH="--encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128
 --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 --encoder-attention-heads 4 --decoder-attention-heads 4
 --max-source-positions 256 --max-target-positions 256"
export ARCH=mbart_base ARCH_ARGS="$TINY_ARCH" DEVICE_ARGS=--cpu SEED=1

CORPUS="$WORK/data"; BIN="$WORK/bin"; CK="$WORK/checkpoints"; EV="$WORK/eval"
mkdir -p "$WORK/.done" "$CK"
TIMINGS="$WORK/timings.tsv"
say "ML50-mini in $WORK (scale $SCALE, $OMP_NUM_THREADS threads): budgets pretrain ${PRETRAIN_S}s, continue ${CONTINUE_S}s, finetune ${FINETUNE_S}s, bilingual ${BILINGUAL_S}s x $(( $(echo "$BILINGUAL" | tr ',' '\n' | grep -c .) * 2 ))"

stage() {  # stage NAME "one-line description" FUNCTION
  local name=$1 desc=$2 fn=$3 t0
  if [[ -f "$WORK/.done/$name" ]]; then say "=== [$name] done earlier ($WORK/.done/$name), skipped"; return; fi
  say ""; say "=== [$name] $desc"
  t0=$(date +%s)
  "$fn"
  printf '%s\t%s\n' "$name" "$(( $(date +%s) - t0 ))" >>"$TIMINGS"
  date -u +%FT%TZ >"$WORK/.done/$name"
}

# --------------------------------------------------------------------------------------------------
do_data() {
  run mtkit data gettext --out "$CORPUS" --langs "$ALL_LANGS" --valid-size "$TEST_SIZE" --test-size "$TEST_SIZE"
  # cap training lines per direction (the budgets, not the data, limit the mini run)
  local f
  for f in "$CORPUS"/raw/train.*; do
    if (( $(wc -l <"$f") > MAX_TRAIN )); then head -n "$MAX_TRAIN" "$f" >"$f.tmp" && mv "$f.tmp" "$f"; fi
  done
  # the model's language list: the pretraining languages, then the added ones (extend-langs order)
  echo "$ALL_LANGS" | tr ',' '\n' >"$WORK/langs.txt"
  run mtkit data binarize --raw "$CORPUS/raw" --out "$BIN" --spm-vocab-size "$SPM_VOCAB" \
      --max-pieces "$MAX_PIECES" --mono --langs-file "$WORK/langs.txt"
  echo "$OLD_LANGS" | tr ',' '\n' >"$WORK/langs.old.txt"
}

do_pretrain() {
  MONO="$BIN/databin_mono" LANGS="$OLD_LANGS" SAVE_DIR="$CK/pretrain" MAX_UPDATE=$PRETRAIN_UPDATES \
  STOP_TIME_HOURS=$(hours "$PRETRAIN_S") LR=1e-3 WARMUP=200 MAX_TOKENS=4096 TOKENS_PER_SAMPLE=128 \
  EXTRA_ARGS="--disable-validation --log-interval 25 --save-interval-updates 0" \
    run bash "$mb/pretrain.sh"
}

do_extend() {
  local init=() p
  IFS=, read -r -a pairs <<<"$INIT_FROM"
  for p in "${pairs[@]}"; do [[ -n "$p" ]] && init+=(--init-from "$p"); done
  run mtkit extend-langs --checkpoint "$CK/pretrain/checkpoint_last.pt" --dict "$BIN/databin_mono/dict.txt" \
      --langs "$WORK/langs.old.txt" --new-langs "$WORK/langs.txt" --spm-model "$BIN/spm.model" \
      --out "$CK/extended" "${init[@]}"
}

do_continue() {
  MONO="$BIN/databin_mono" LANGS="$WORK/langs.txt" SAVE_DIR="$CK/continue" INIT="$CK/extended/model.pt" \
  MAX_UPDATE=$CONTINUE_UPDATES STOP_TIME_HOURS=$(hours "$CONTINUE_S") LR=1e-3 WARMUP=100 MAX_TOKENS=4096 \
  TOKENS_PER_SAMPLE=128 EXTRA_ARGS="--disable-validation --log-interval 25 --save-interval-updates 0" \
    run bash "$mb/pretrain.sh"
}

ft_env() {  # the finetuning hyper-parameters of the mini run (README defaults are for mbart_large)
  export DATA="$BIN/databin" LANG_LIST="$WORK/langs.txt" DICT="$BIN/databin_mono/dict.txt" LR=1e-3 WARMUP=200 \
    MAX_UPDATE=100000 DROPOUT=0.1 ATTENTION_DROPOUT=0.0 LABEL_SMOOTHING=0.1 MAX_TOKENS=4096 UPDATE_FREQ=1 \
    SAVE_INTERVAL_UPDATES=0 EXTRA_ARGS="--disable-validation --max-source-positions 256 --max-target-positions 256"
}

do_finetune() (
  ft_env
  MODE=m2m LANGS="$ALL_LANGS" MAX_UPDATE=$FINETUNE_UPDATES PRETRAINED="$CK/continue/checkpoint_last.pt" SAVE_DIR="$CK/m2m" \
  STOP_TIME_HOURS=$(hours "$FINETUNE_S") run bash "$mb/finetune.sh"
)

do_bilingual() (
  ft_env
  local l pair
  IFS=, read -r -a low <<<"$BILINGUAL"
  for l in "${low[@]}"; do
    for pair in "en_XX-$l" "$l-en_XX"; do
      if [[ -f "$CK/bi-$pair/.done" ]]; then say "== bilingual $pair done earlier"; continue; fi
      MODE=pairs PAIRS="$pair" MAX_UPDATE=$BILINGUAL_UPDATES PRETRAINED="" SAVE_DIR="$CK/bi-$pair" STOP_TIME_HOURS=$(hours "$BILINGUAL_S") \
        run bash "$mb/finetune.sh"
      touch "$CK/bi-$pair/.done"
    done
  done
)

do_evaluate() {
  local common=(DATA="$BIN/databin" LANG_LIST="$WORK/langs.txt" REF_DIR="$CORPUS/raw" BEAM="$BEAM" BATCH_SIZE=32 GEN_ARGS="--max-len-a 1.5 --max-len-b 10")
  run env "${common[@]}" MODEL="$CK/m2m/checkpoint_last.pt" OUT="$EV/m2m" bash "$mb/generate.sh"
  local l pair
  IFS=, read -r -a low <<<"$BILINGUAL"
  mkdir -p "$EV/bilingual/hyp"
  for l in "${low[@]}"; do
    for pair in "en_XX-$l" "$l-en_XX"; do
      run env "${common[@]}" MODEL="$CK/bi-$pair/checkpoint_last.pt" PAIRS="$pair" OUT="$EV/bi-$pair" \
          EVAL_ARGS="" bash "$mb/generate.sh"
      cp "$EV/bi-$pair/hyp/generate-$pair.txt" "$EV/bilingual/hyp/"
    done
  done
  run mtkit evaluate --hyp-dir "$EV/bilingual/hyp" --ref-dir "$CORPUS/raw" --split test --train-dir "$CORPUS/raw" \
      --out "$EV/bilingual/report"
  local publish=()
  [[ "$PUBLISH" == 1 ]] && publish=(--publish "$repo/benchmarks/ML50/mini/results.json")
  run "$PYTHON" "$here/report.py" --work "$WORK" --systems "multilingual_ft=$EV/m2m/report/scores.json" \
      "bilingual_scratch=$EV/bilingual/report/scores.json" --out "$WORK/report" \
      --command "MINI_SCALE=$SCALE recipes/mini/run.sh" "${publish[@]}"
}

do_translate() {
  # a model folder as mtkit translate expects it: checkpoint, dict.txt, spm.model, langs.txt
  local m="$WORK/model-m2m"
  mkdir -p "$m"
  ln -sf "$CK/m2m/checkpoint_last.pt" "$m/checkpoint.pt"
  cp "$BIN/databin_mono/dict.txt" "$m/dict.txt"; cp "$BIN/spm.model" "$m/spm.model"; cp "$WORK/langs.txt" "$m/langs.txt"
  local tgt targets=()
  for tgt in ${TRANSLATE_TO//,/ }; do [[ ",$ALL_LANGS," == *",$tgt,"* ]] && targets+=("$tgt"); done
  (( ${#targets[@]} )) || die "MINI_TRANSLATE_TO=$TRANSLATE_TO names none of the languages $ALL_LANGS"
  local sample="$WORK/translate.en.txt"
  head -n 5 "$CORPUS/raw/test.en_XX-${targets[0]}.en_XX" >"$sample"
  for tgt in "${targets[@]}"; do
    say "-- en_XX -> $tgt"
    run mtkit translate -m "$m" --src-lang en_XX --tgt-lang "$tgt" "$sample" | tee "$WORK/translate.en-$tgt.txt"
  done
}

T_START=$(date +%s)
stage data "build ML50-mini from gettext catalogs + shared ${SPM_VOCAB}-piece SPM + databins" do_data
stage pretrain "denoising pretraining on $OLD_LANGS (${PRETRAIN_S}s)" do_pretrain
stage extend "mtkit extend-langs: + $NEW_LANGS ($INIT_FROM)" do_extend
stage continue "continued denoising on $ALL_LANGS (${CONTINUE_S}s)" do_continue
stage finetune "many-to-many finetuning, en<->x (${FINETUNE_S}s)" do_finetune
stage bilingual "bilingual-from-scratch baselines for $BILINGUAL (${BILINGUAL_S}s each direction)" do_bilingual
stage evaluate "generate + mtkit evaluate every direction; comparison report" do_evaluate
stage translate "mtkit translate a few sentences" do_translate
say ""
say "=== ML50-mini finished in $(( $(date +%s) - T_START ))s (this invocation). Report: $WORK/report/report.md"
[[ "$PUBLISH" == 1 ]] && say "results: $repo/benchmarks/ML50/mini/results.json"
exit 0
