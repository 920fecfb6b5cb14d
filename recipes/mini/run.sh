#!/usr/bin/env bash
# ML50-mini: the whole mBART-50 path on a laptop, from the machine's gettext catalogs.
#
#   bash recipes/mini/run.sh
#
#   1 data       ML50-mini from /usr/share/locale (high: de/es/fr, mid: ro/gl, low: si, very low: sw)
#                + one shared SentencePiece model, parallel and monolingual databins
#   2 pretrain   tiny mBART, multilingual denoising on the first 6 of the 8 languages
#   3 extend     mtkit extend-langs: add sw_KE and gl_ES (gl_ES initialised from es_XX)
#   4 continue   continued denoising pretraining on all 8 languages
#   5 finetune   many-to-many finetuning (en<->x, 14 directions)
#   6 bilingual  bilingual models from scratch for a low- and a mid-resource language (si_LK, ro_RO), each
#                trained until its valid loss stops improving, and at most as many updates as the
#                multilingual finetuning
#   7 evaluate   fairseq-generate + mtkit evaluate for every system, each at its best valid loss, and
#                mtkit compare of the two systems (paired significance, analyses, one HTML page)
#   8 translate  a few sentences with mtkit translate
#   9 report     WORK/report: results.json (scores, test sizes, budgets, wall time), report.md and
#                the learning curves (train/valid loss over updates) of every training stage
#
# Budgets are numbers of updates, so the results do not depend on the machine's speed or load; the
# multilingual stages (data to finetune) fit a short session on 2 CPU cores, and the four bilingual
# baselines (up to MINI_FINETUNE_UPDATES updates each) take longer than all of them together: run them
# beside the multilingual stages with MINI_STAGES (below). benchmarks/ML50/mini/results.json holds the
# committed run's stage times with the machine's load average. Every training stage logs its curves to SAVE_DIR/tensorboard (fairseq's --tensorboard-logdir).
# A re-run skips the stages whose marker WORK/.done/STAGE exists (delete it to redo that stage).
# Nothing is written outside WORK unless MINI_PUBLISH=1.
#
# Environment (defaults in brackets):
#   MINI_WORK [work/mini]       everything goes here
#   MINI_SCALE [1]              multiplies every update budget and the data caps
#   MINI_PRETRAIN_UPDATES [450]  MINI_CONTINUE_UPDATES [300]  MINI_FINETUNE_UPDATES [1200]
#   MINI_BILINGUAL_PATIENCE [3]: a bilingual model stops after this many validations without a
#                               lower valid loss (at most MINI_FINETUNE_UPDATES updates)
#   MINI_VALID_UPDATES [100]    updates between validations (and checkpoints) of every stage
#   MINI_OLD_LANGS [de_DE,en_XX,es_XX,fr_XX,ro_RO,si_LK]  MINI_NEW_LANGS [sw_KE,gl_ES]
#   MINI_INIT_FROM [gl_ES=es_XX]  MINI_BILINGUAL [si_LK,ro_RO]
#   MINI_SPM_VOCAB [2000] MINI_MAX_PIECES [40] MINI_MAX_TRAIN [60000*scale lines per direction]
#   MINI_TEST_SIZE [200*scale, at least 20] MINI_BEAM [4] MINI_THREADS [nproc] MINI_SEED [1]
#   MINI_TRANSLATE_TO [fr_XX,si_LK,gl_ES]: targets of the translate stage
#   MINI_PUBLISH [0]            1: copy the report into benchmarks/ML50/mini/ (the committed results)
#   MINI_PUBLISH_DIR [benchmarks/ML50/mini]  where MINI_PUBLISH=1 copies it (e.g. a folder per extra seed)
#   MINI_NOTE [none]            how the run was done, recorded in results.json (run_note) and report.md,
#                               for a run that one plain invocation did not do from start to end
#   MINI_STAGES [all]           comma list: run only these stages (the others are left as they are), e.g.
#                               the bilingual baselines in a second shell once the data stage is done:
#                                 MINI_STAGES=bilingual MINI_THREADS=1 bash recipes/mini/run.sh
#                               beside MINI_STAGES=data,pretrain,extend,continue,finetune MINI_THREADS=1 …,
#                               then a plain run does the rest (stages already done are skipped)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
mb="$repo/recipes/mbart50"
source "$repo/recipes/common.sh"

# the venv next to the repo, if the caller did not activate one
if ! command -v mtkit >/dev/null 2>&1 && [[ -x "$repo/.venv/bin/mtkit" ]]; then export PATH="$repo/.venv/bin:$PATH"; fi
need_cmd mtkit; need_cmd fairseq-train; need_cmd fairseq-generate; need_cmd flock
python -c 'import tensorboardX' 2>/dev/null \
  || die "the learning curves need tensorboardX: pip install -e '.[tensorboard]' (scripts/setup.sh installs it)"

T_START=$(date +%s)
LOAD_AT_START=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo unknown)  # other work slows the wall time
WORK=$(mkdir -p "${MINI_WORK:-work/mini}" && cd "${MINI_WORK:-work/mini}" && pwd)
SCALE=${MINI_SCALE:-1}
scaled() { python -c "import sys; print(max(int(sys.argv[3]), round(float(sys.argv[1]) * float(sys.argv[2]))))" "$1" "$SCALE" "${2:-1}"; }
PRETRAIN_UPDATES=${MINI_PRETRAIN_UPDATES:-$(scaled 450)}
CONTINUE_UPDATES=${MINI_CONTINUE_UPDATES:-$(scaled 300)}
FINETUNE_UPDATES=${MINI_FINETUNE_UPDATES:-$(scaled 1200)}
VALID_UPDATES=${MINI_VALID_UPDATES:-$(scaled 100 2)}
PATIENCE=${MINI_BILINGUAL_PATIENCE:-3}
OLD_LANGS=${MINI_OLD_LANGS:-de_DE,en_XX,es_XX,fr_XX,ro_RO,si_LK}
NEW_LANGS=${MINI_NEW_LANGS:-sw_KE,gl_ES}
INIT_FROM=${MINI_INIT_FROM-gl_ES=es_XX}
BILINGUAL=${MINI_BILINGUAL:-si_LK,ro_RO}
SPM_VOCAB=${MINI_SPM_VOCAB:-2000}
MAX_PIECES=${MINI_MAX_PIECES:-40}
MAX_TRAIN=${MINI_MAX_TRAIN:-$(scaled 60000 200)}
TEST_SIZE=${MINI_TEST_SIZE:-$(scaled 200 20)}
BEAM=${MINI_BEAM:-4}
SEED=${MINI_SEED:-1}
TRANSLATE_TO=${MINI_TRANSLATE_TO:-fr_XX,si_LK,gl_ES}
PUBLISH=${MINI_PUBLISH:-0}
PUBLISH_DIR=${MINI_PUBLISH_DIR:-$repo/benchmarks/ML50/mini}
[[ "$PUBLISH" == 1 ]] && PUBLISH_DIR=$(mkdir -p "$PUBLISH_DIR" && cd "$PUBLISH_DIR" && pwd)
STAGES=${MINI_STAGES:-}
for s_ in ${STAGES//,/ }; do
  [[ " data pretrain extend continue finetune bilingual evaluate translate report " == *" $s_ "* ]] \
    || die "MINI_STAGES=$STAGES: unknown stage '$s_' (stages: data pretrain extend continue finetune bilingual evaluate translate report)"
done
export OMP_NUM_THREADS=${MINI_THREADS:-$(nproc)}
ALL_LANGS="$OLD_LANGS,$NEW_LANGS"

# the tiny mBART: 2+2 layers, d=128 (a 2k SPM and <=40-piece segments keep it learning on 2 cores)
TINY=(--arch mbart_base --encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128
  --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 --encoder-attention-heads 4 --decoder-attention-heads 4
  --max-source-positions 256 --max-target-positions 256 --seed "$SEED")
# every training stage validates and saves every VALID_UPDATES updates (never per epoch: an epoch of
# a 44-pair corpus is one update), keeps its last and best checkpoints and logs its learning curves
# next to them. --required-batch-size-multiple 1: with fairseq's default (8) a validation set of
# fewer than 8 items (sw_KE's) gives no batch at all and fairseq stops.
# stage_flags SAVE_DIR: sets the array STAGE to these flags.
stage_flags() {
  STAGE=(--save-dir "$1" --tensorboard-logdir "$1/tensorboard" --log-interval 25
    --validate-interval-updates "$VALID_UPDATES" --save-interval-updates "$VALID_UPDATES"
    --keep-interval-updates 1 --validate-interval 1000000 --save-interval 1000000
    --required-batch-size-multiple 1)
}

CORPUS="$WORK/data"; BIN="$WORK/bin"; CK="$WORK/checkpoints"; EV="$WORK/eval"
mkdir -p "$WORK/.done" "$WORK/.locks" "$CK"
TIMINGS="$WORK/timings.tsv"
RAN=()
say "ML50-mini in $WORK (scale $SCALE, $OMP_NUM_THREADS threads): updates pretrain $PRETRAIN_UPDATES, continue $CONTINUE_UPDATES, finetune $FINETUNE_UPDATES; bilingual until $PATIENCE validations without improvement (at most $FINETUNE_UPDATES)"

stage() {  # stage NAME "one-line description" FUNCTION
  local name=$1 desc=$2 fn=$3 t0
  if [[ -f "$WORK/.done/$name" ]]; then say "=== [$name] done earlier ($WORK/.done/$name), skipped"; return; fi
  if [[ -n "$STAGES" && ",$STAGES," != *",$name,"* ]]; then say "=== [$name] not in MINI_STAGES=$STAGES, skipped"; return; fi
  if [[ "$name" != data && ! -f "$WORK/.done/data" ]]; then die "stage $name needs the data stage first (MINI_STAGES=data, or a plain run)"; fi
  # one run per stage at a time (e.g. a plain run started while a MINI_STAGES=bilingual run still
  # trains): the second waits for the first, then skips the stage if the first finished it
  local lock_fd
  exec {lock_fd}>"$WORK/.locks/$name"
  if ! flock -n "$lock_fd"; then
    say "=== [$name] another run is doing this stage (lock $WORK/.locks/$name): waiting for it"
    flock "$lock_fd"
  fi
  if [[ -f "$WORK/.done/$name" ]]; then
    say "=== [$name] done earlier ($WORK/.done/$name, by the run waited for), skipped"; exec {lock_fd}>&-; return
  fi
  say ""; say "=== [$name] $desc"
  t0=$(date +%s)
  "$fn"
  printf '%s\t%s\n' "$name" "$(( $(date +%s) - t0 ))" >>"$TIMINGS"
  date -u +%FT%TZ >"$WORK/.done/$name"
  RAN+=("$name")
  exec {lock_fd}>&-
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
  echo "$OLD_LANGS" | tr ',' '\n' >"$WORK/langs.old.txt"
  run mtkit data binarize --raw "$CORPUS/raw" --out "$BIN" --spm-vocab-size "$SPM_VOCAB" \
      --max-pieces "$MAX_PIECES" --mono --langs-file "$WORK/langs.txt"
}

denoise() {  # denoise LANG_LIST SAVE_DIR UPDATES WARMUP: pretrain.sh with the mini's settings
  stage_flags "$2"
  run bash "$mb/pretrain.sh" "$BIN/databin_mono" "$1" "${TINY[@]}" "${STAGE[@]}" \
    --max-update "$3" --lr 1e-3 --warmup-updates "$4" --max-tokens 4096 --tokens-per-sample 128
}

do_pretrain() { denoise "$WORK/langs.old.txt" "$CK/pretrain" "$PRETRAIN_UPDATES" 200; }

do_extend() {
  local init=() p pairs
  IFS=, read -r -a pairs <<<"$INIT_FROM"
  for p in "${pairs[@]}"; do [[ -n "$p" ]] && init+=(--init-from "$p"); done
  run mtkit extend-langs --checkpoint "$CK/pretrain/checkpoint_last.pt" --dict "$BIN/databin_mono/dict.txt" \
      --langs "$WORK/langs.old.txt" --new-langs "$WORK/langs.txt" --spm-model "$BIN/spm.model" \
      --out "$CK/extended" "${init[@]}"
}

do_continue() { PRETRAINED="$CK/extended/model.pt" denoise "$WORK/langs.txt" "$CK/continue" "$CONTINUE_UPDATES" 100; }

train_mt() {  # train_mt SAVE_DIR [fairseq-train args]: finetune.sh with the mini's settings
  stage_flags "$1"
  shift
  run bash "$mb/finetune.sh" "$BIN/databin" "$WORK/langs.txt" "${TINY[@]}" "${STAGE[@]}" \
    --max-update "$FINETUNE_UPDATES" --lr 1e-3 --warmup-updates 200 --dropout 0.1 --attention-dropout 0.0 \
    --label-smoothing 0.1 --max-tokens 4096 --update-freq 1 "$@"
}

do_finetune() { PRETRAINED="$CK/continue/checkpoint_last.pt" train_mt "$CK/m2m"; }

bilingual_pairs() {  # the directions of the bilingual baselines, one a line
  local l
  for l in ${BILINGUAL//,/ }; do echo "en_XX-$l"; echo "$l-en_XX"; done
}

do_bilingual() {
  local pair
  for pair in $(bilingual_pairs); do
    if [[ -f "$CK/bi-$pair/.done" ]]; then say "== bilingual $pair done earlier"; continue; fi
    train_mt "$CK/bi-$pair" --lang-pairs "$pair" --patience "$PATIENCE"
    touch "$CK/bi-$pair/.done"
  done
}

do_evaluate() {
  local gen=(--beam "$BEAM" --batch-size 32 --max-len-a 1.5 --max-len-b 10) pair
  OUT="$EV/m2m" run bash "$mb/generate.sh" "$CK/m2m/checkpoint_best.pt" "$BIN/databin" "$WORK/langs.txt" \
      "$CORPUS/raw" "${gen[@]}"
  mkdir -p "$EV/bilingual/hyp"
  for pair in $(bilingual_pairs); do
    OUT="$EV/bi-$pair" run bash "$mb/generate.sh" "$CK/bi-$pair/checkpoint_best.pt" "$BIN/databin" \
        "$WORK/langs.txt" "$CORPUS/raw" "${gen[@]}" --lang-pairs "$pair"
    cp "$EV/bi-$pair/hyp/generate-$pair.txt" "$EV/bilingual/hyp/"
  done
  run mtkit evaluate --hyp-dir "$EV/bilingual/hyp" --ref-dir "$CORPUS/raw" --split test --train-dir "$CORPUS/raw" \
      --out "$EV/bilingual/report"
  # the two systems compared on the directions both have: sacrebleu's paired bootstrap and approximate
  # randomization per direction and per resource class (directions under 100 test lines shown, not
  # averaged), compare-mt's analyses and examples: $EV/compare/compare.html, report.md, compare.json
  run mtkit compare "bilingual_scratch=$EV/bilingual/hyp" "multilingual_ft=$EV/m2m/hyp" --ref-dir "$CORPUS/raw" \
      --split test --train-dir "$CORPUS/raw" --resource-thresholds "high=30000,mid=5000,low=500,very low=0" \
      --seed "$SEED" --out "$EV/compare"
}

do_translate() {
  # a model folder as mtkit translate expects it: checkpoint, dict.txt, spm.model, langs.txt
  local m="$WORK/model-m2m" tgt targets=() sample="$WORK/translate.en.txt"
  mkdir -p "$m"
  ln -sf "$CK/m2m/checkpoint_best.pt" "$m/checkpoint.pt"
  cp "$BIN/databin_mono/dict.txt" "$m/dict.txt"; cp "$BIN/spm.model" "$m/spm.model"; cp "$WORK/langs.txt" "$m/langs.txt"
  for tgt in ${TRANSLATE_TO//,/ }; do [[ ",$ALL_LANGS," == *",$tgt,"* ]] && targets+=("$tgt"); done
  (( ${#targets[@]} )) || die "MINI_TRANSLATE_TO=$TRANSLATE_TO names none of the languages $ALL_LANGS"
  head -n 5 "$CORPUS/raw/test.en_XX-${targets[0]}.en_XX" >"$sample"
  for tgt in "${targets[@]}"; do
    say "-- en_XX -> $tgt"
    run mtkit translate -m "$m" --src-lang en_XX --tgt-lang "$tgt" "$sample" | tee "$WORK/translate.en-$tgt.txt"
  done
}

do_report() {
  local args=() pair
  args+=(--system "multilingual_ft=$EV/m2m/report/scores.json" --system "bilingual_scratch=$EV/bilingual/report/scores.json")
  args+=(--curves "pretrain=$CK/pretrain/tensorboard" --curves "continue=$CK/continue/tensorboard"
         --curves "finetune=$CK/m2m/tensorboard" --evaluated finetune=best)
  for pair in $(bilingual_pairs); do args+=(--curves "bilingual_$pair=$CK/bi-$pair/tensorboard" --evaluated "bilingual_$pair=best"); done
  args+=(--budget "pretrain=$PRETRAIN_UPDATES updates (denoising on $OLD_LANGS)"
         --budget "continue=$CONTINUE_UPDATES updates (denoising on $ALL_LANGS, from the extended model)"
         --budget "finetune=$FINETUNE_UPDATES updates (en<->x, from the continued model); evaluated at its best valid loss"
         --budget "bilingual=each direction from scratch with the finetuning's settings until $PATIENCE validations ($VALID_UPDATES updates apart) bring no lower valid loss, at most $FINETUNE_UPDATES updates; evaluated at its best valid loss")
  local k
  for k in SCALE OLD_LANGS NEW_LANGS INIT_FROM BILINGUAL SPM_VOCAB MAX_PIECES MAX_TRAIN TEST_SIZE BEAM SEED \
           VALID_UPDATES PATIENCE OMP_NUM_THREADS LOAD_AT_START; do args+=(--setting "$k=${!k}"); done
  args+=(--setting "stages_run=$(IFS=,; echo "${RAN[*]}"),report")
  # the wall time of one invocation that ran every stage; a resumed run reports only its stage times
  (( ${#RAN[@]} == $(find "$WORK/.done" -type f | wc -l) )) && args+=(--wall-seconds "$(( $(date +%s) - T_START ))")
  [[ "$PUBLISH" == 1 ]] && args+=(--publish "$PUBLISH_DIR")
  run python "$repo/benchmarks/ML50/mini/report.py" --work "$WORK" --out "$WORK/report" "${args[@]}" \
      --command "MINI_SCALE=$SCALE bash recipes/mini/run.sh" ${MINI_NOTE:+--note "$MINI_NOTE"}
  if [[ "$PUBLISH" == 1 ]]; then
    mkdir -p "$PUBLISH_DIR/compare"
    cp "$EV/compare"/{compare.html,compare.json,report.md} "$PUBLISH_DIR/compare/"
  fi
}

stage data "build ML50-mini from gettext catalogs + shared ${SPM_VOCAB}-piece SPM + databins" do_data
stage pretrain "denoising pretraining on $OLD_LANGS ($PRETRAIN_UPDATES updates)" do_pretrain
stage extend "mtkit extend-langs: + $NEW_LANGS ($INIT_FROM)" do_extend
stage continue "continued denoising on $ALL_LANGS ($CONTINUE_UPDATES updates)" do_continue
stage finetune "many-to-many finetuning, en<->x ($FINETUNE_UPDATES updates)" do_finetune
stage bilingual "bilingual baselines from scratch for $BILINGUAL (until valid loss stops improving)" do_bilingual
stage evaluate "generate + mtkit evaluate every direction of every system" do_evaluate
stage translate "mtkit translate a few sentences" do_translate
stage report "results.json, report.md, learning curves -> $WORK/report" do_report
say ""
say "=== ML50-mini finished in $(( $(date +%s) - T_START ))s (this invocation). Report: $WORK/report/report.md"
[[ "$PUBLISH" == 1 ]] && say "published: $PUBLISH_DIR/"
exit 0
