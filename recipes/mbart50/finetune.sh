#!/usr/bin/env bash
# Multilingual finetuning of a pretrained mBART (or training from scratch when PRETRAINED is empty)
# with translation_multi_simple_epoch, as in fairseq's examples/multilingual README: temperature
# sampling (T=1.5), source-language token on the encoder side, target-language token on the decoder
# side, the language list (--lang-dict) in the model's order (ML50 order for the released models).
#
#   MODE        m2m (many-to-many, en<->x) [default] | o2m (en->x) | m2o (x->en) | pairs (use PAIRS)
#   DATA        databin with {split}.{src}-{tgt}.{lang}.{bin,idx} and dict.{lang}.txt (mtkit data binarize)
#   LANG_LIST   language list file (ML50_langs.txt for mBART-50; langs.txt of extend-langs output)
#   LANGS       languages to train on [all of LANG_LIST that have data]; PAIRS overrides MODE's pairs
#   PRETRAINED  pretrained checkpoint (mBART-50 model.pt, or ours); empty = from scratch
#   DICT        the model's dictionary [DATA/dict.en_XX.txt]; checked against PRETRAINED before training
#   LANG_TOK_STYLE [mbart: [xx_YY] tokens + <mask>, as mBART; 'multilingual' for __xx_YY__ models]
#   SAVE_DIR [checkpoints/ft-$MODE]  ARCH [mbart_large]  ARCH_ARGS [""]
#   fairseq README defaults, all overridable: LR [3e-05] WARMUP [2500] MAX_UPDATE [40000] DROPOUT [0.3]
#   ATTENTION_DROPOUT [0.1] LABEL_SMOOTHING [0.2] MAX_TOKENS [1024] UPDATE_FREQ [2] TEMPERATURE [1.5]
#   SEED [222] SAVE_INTERVAL_UPDATES [5000] STOP_TIME_HOURS [0]  DEVICE_ARGS  EXTRA_ARGS
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"

MODE=${MODE:-m2m}
DATA=${DATA:?set DATA to the binarised parallel data (mtkit data binarize --out X: X/databin)}
LANG_LIST=${LANG_LIST:?set LANG_LIST to the language list file the model was (pre)trained with}
LANGS=${LANGS:-}
PAIRS=${PAIRS:-}
PRETRAINED=${PRETRAINED:-}
DICT=${DICT:-$DATA/dict.en_XX.txt}
LANG_TOK_STYLE=${LANG_TOK_STYLE:-mbart}
SAVE_DIR=${SAVE_DIR:-checkpoints/ft-$MODE}
ARCH=${ARCH:-mbart_large}
ARCH_ARGS=${ARCH_ARGS:-}
LR=${LR:-3e-05}
WARMUP=${WARMUP:-2500}
MAX_UPDATE=${MAX_UPDATE:-40000}
DROPOUT=${DROPOUT:-0.3}
ATTENTION_DROPOUT=${ATTENTION_DROPOUT:-0.1}
LABEL_SMOOTHING=${LABEL_SMOOTHING:-0.2}
MAX_TOKENS=${MAX_TOKENS:-1024}
UPDATE_FREQ=${UPDATE_FREQ:-2}
TEMPERATURE=${TEMPERATURE:-1.5}
SEED=${SEED:-222}
SAVE_INTERVAL_UPDATES=${SAVE_INTERVAL_UPDATES:-5000}
STOP_TIME_HOURS=${STOP_TIME_HOURS:-0}
DEVICE_ARGS=${DEVICE_ARGS:-}
EXTRA_ARGS=${EXTRA_ARGS:-}

need_cmd "$MTKIT"; need_cmd "$FAIRSEQ_TRAIN"
need_dir "$DATA" DATA "run mtkit data binarize first"
need_file "$LANG_LIST" LANG_LIST "one language code a line, in the model's order"
if [[ -z "$LANGS" ]]; then
  # every language of the list that has training data with en_XX
  LANGS=$(for l in $(grep -v '^[[:space:]]*$' "$LANG_LIST"); do
            if [[ $l == en_XX ]] || compgen -G "$DATA/train.*$l*.idx" >/dev/null; then echo "$l"; fi
          done | paste -sd, -)
fi
if [[ -z "$PAIRS" ]]; then
  [[ "$MODE" != pairs ]] || die "MODE=pairs needs PAIRS=src-tgt,..."
  PAIRS=$(pairs_for "$MODE" "$(langs_csv "$LANGS")")
fi
[[ -n "$PAIRS" ]] || die "no language pairs: LANGS=$LANGS has no language besides en_XX with data in $DATA"
run "$MTKIT" check databin --databin "$DATA" --langs "$LANG_LIST" --pairs "$PAIRS" \
    --dict "$DICT"
init_args=()
if [[ -n "$PRETRAINED" ]]; then
  need_file "$PRETRAINED" PRETRAINED
  mask=yes; [[ "$LANG_TOK_STYLE" == mbart ]] || mask=no
  # catches the embedding size mismatch of fairseq issue #3474 before fairseq does, with the reason
  run "$MTKIT" check vocab --checkpoint "$PRETRAINED" --dict "$DICT" --langs "$LANG_LIST" \
      --expect-mask "$mask"
  init_args=(--finetune-from-model "$PRETRAINED")
fi
if [[ -z "$DEVICE_ARGS" ]] && ! "$PYTHON" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  DEVICE_ARGS=--cpu
fi

say "== finetuning ($MODE) on $PAIRS -> $SAVE_DIR"
# shellcheck disable=SC2086
run "$FAIRSEQ_TRAIN" "$DATA" --user-dir "$(user_dir)" $DEVICE_ARGS \
  --task translation_multi_simple_epoch --lang-dict "$LANG_LIST" --lang-pairs "$PAIRS" \
  --lang-tok-style "$LANG_TOK_STYLE" --encoder-langtok src --decoder-langtok \
  --sampling-method temperature --sampling-temperature "$TEMPERATURE" \
  --arch "$ARCH" $ARCH_ARGS --encoder-normalize-before --decoder-normalize-before --layernorm-embedding \
  --share-all-embeddings \
  --criterion label_smoothed_cross_entropy --label-smoothing "$LABEL_SMOOTHING" \
  --optimizer adam --adam-eps 1e-06 --adam-betas '(0.9, 0.98)' --lr-scheduler inverse_sqrt \
  --lr "$LR" --warmup-updates "$WARMUP" --max-update "$MAX_UPDATE" --stop-time-hours "$STOP_TIME_HOURS" \
  --dropout "$DROPOUT" --attention-dropout "$ATTENTION_DROPOUT" --weight-decay 0.0 \
  --max-tokens "$MAX_TOKENS" --update-freq "$UPDATE_FREQ" \
  --save-interval 1 --save-interval-updates "$SAVE_INTERVAL_UPDATES" --keep-interval-updates 10 \
  --no-epoch-checkpoints --seed "$SEED" --log-format simple --log-interval 20 --no-progress-bar \
  --data-buffer-size 0 --save-dir "$SAVE_DIR" "${init_args[@]}" $EXTRA_ARGS
