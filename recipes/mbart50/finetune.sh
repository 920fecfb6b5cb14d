#!/usr/bin/env bash
# Multilingual finetuning of mBART (fairseq's examples/multilingual recipe) with mtkit's checks.
#
#   recipes/mbart50/finetune.sh DATA LANG_LIST [fairseq-train args ...]
#
#   DATA       parallel databin: {split}.{src}-{tgt}.{lang}.{bin,idx}, one shared dict.{lang}.txt
#              (mtkit data binarize --out X makes X/databin)
#   LANG_LIST  the language list file, one code a line, in the model's order (ML50_langs.txt for
#              mBART-50; langs.txt of mtkit extend-langs): it fixes the language-token ids
#   args       any fairseq-train flags; they come last, so they override the defaults below
#              (e.g. --lang-pairs en_XX-si_LK,si_LK-en_XX, --arch mbart_base, --max-update 1000)
#
# Environment (mtkit's inputs only):
#   PRETRAINED  checkpoint to start from (--finetune-from-model: fresh optimizer, meters, clock);
#               empty = train from scratch. Its embedding rows are checked against DATA's dictionary
#               + LANG_LIST's tokens (+ <mask>) before fairseq runs (fairseq issue #3474).
#   MODE        m2m [default] (en<->x) | o2m (en->x) | m2o (x->en): the default --lang-pairs, over
#               the languages of LANG_LIST with training data in DATA
#   LAUNCH      launcher before fairseq-train, e.g. "torchrun --nproc-per-node 8" or "srun"
#               (see recipes/README.md); empty = fairseq-train starts one process per GPU itself
#
# The defaults are those of fairseq's examples/multilingual/finetune_multilingual_model.sh (lr 3e-05,
# 40k updates, max-tokens 1024 x update-freq 2, temperature 1.5) with mBART-50's architecture and
# [xx_YY] language tokens. Without a GPU the recipe adds --cpu --distributed-backend gloo
# --ddp-backend legacy_ddp. --data-buffer-size 0: fairseq's background batch thread aborted the
# process at exit on CPU.
# Learning curves (train/valid loss, lr, ... over updates) go to SAVE_DIR/tensorboard (--save-dir,
# --tensorboard-logdir; fairseq writes them when tensorboardX is installed: pip install -e '.[tensorboard]').
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
need_args "${BASH_SOURCE[0]}" 2 "$@"
DATA=$1 LANG_LIST=$2
shift 2
MODE=${MODE:-m2m}
PRETRAINED=${PRETRAINED:-}

need_cmd mtkit
checked_pairs "$DATA" "$LANG_LIST" train "$@"
init=()
if [[ -n "$PRETRAINED" ]]; then
  need_file "$PRETRAINED" PRETRAINED
  mask=yes; [[ "$(flag_value --lang-tok-style mbart "$@")" == mbart ]] || mask=no
  run mtkit check vocab --checkpoint "$PRETRAINED" --dict "$DATA/dict.${PAIRS%%-*}.txt" \
      --langs "$LANG_LIST" --expect-mask "$mask"
  init=(--finetune-from-model "$PRETRAINED")
fi
device_flags train
train_command
save_dir=$(flag_value --save-dir "checkpoints/ft-$MODE" "$@")

say "== finetuning ($MODE) on $PAIRS"
run "${TRAIN[@]}" "$DATA" --user-dir "$(user_dir)" "${DEVICE[@]}" "${init[@]}" \
  --task translation_multi_simple_epoch --lang-dict "$LANG_LIST" --lang-pairs "$PAIRS" \
  --lang-tok-style mbart --encoder-langtok src --decoder-langtok \
  --sampling-method temperature --sampling-temperature 1.5 \
  --arch mbart_large --encoder-normalize-before --decoder-normalize-before --layernorm-embedding \
  --share-all-embeddings \
  --criterion label_smoothed_cross_entropy --label-smoothing 0.2 \
  --optimizer adam --adam-eps 1e-06 --adam-betas '(0.9, 0.98)' \
  --lr-scheduler inverse_sqrt --lr 3e-05 --warmup-updates 2500 --max-update 40000 \
  --dropout 0.3 --attention-dropout 0.1 --weight-decay 0.0 \
  --max-tokens 1024 --update-freq 2 \
  --save-interval 1 --save-interval-updates 5000 --keep-interval-updates 10 --no-epoch-checkpoints \
  --save-dir "$save_dir" --tensorboard-logdir "$save_dir/tensorboard" --seed 222 \
  --log-format simple --log-interval 20 --no-progress-bar --data-buffer-size 0 \
  "$@"
