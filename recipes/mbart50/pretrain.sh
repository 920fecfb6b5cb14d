#!/usr/bin/env bash
# Multilingual denoising (continued) pretraining of mBART with fairseq's multilingual_denoising task:
# span-poisson masking (lambda 3.5) of 35% of the words, sentence permutation, a [xx_YY] language
# token per instance, and temperature-like language sampling (--multilang-sampling-alpha 0.7).
#
#   recipes/mbart50/pretrain.sh MONO_DATA LANG_LIST [fairseq-train args ...]
#
#   MONO_DATA  monolingual databin: dict.txt + {lang}/{train,valid}.{bin,idx}
#              (mtkit data binarize --mono --out X makes X/databin_mono)
#   LANG_LIST  the language list file, one code a line: its order fixes the language-token ids.
#              Continuing from a checkpoint, it starts with the checkpoint's languages (mtkit
#              extend-langs writes such a list).
#   args       any fairseq-train flags; they come last, so they override the defaults below
#              (e.g. --arch mbart_base, --max-update 1000, --disable-validation)
#
# Environment (mtkit's inputs only):
#   PRETRAINED  checkpoint to continue from with --finetune-from-model (fresh optimizer, meters,
#               clock), e.g. the output of mtkit extend-langs; its embedding rows are checked against
#               dict.txt + LANG_LIST's tokens + <mask> first. To keep the optimizer state and update
#               count instead, leave it empty and pass --restore-file CHECKPOINT (checked the same way).
#   LAUNCH      launcher before fairseq-train, e.g. "torchrun --nproc-per-node 8" or "srun"
#               (see recipes/README.md)
#
# The defaults below are written for mbart_large on GPUs. Without a GPU the recipe adds --cpu
# --distributed-backend gloo --ddp-backend legacy_ddp. --data-buffer-size 0: fairseq's background
# batch thread aborted the process at exit on CPU.
# Learning curves (train/valid loss, lr, ... over updates) go to SAVE_DIR/tensorboard (--save-dir,
# --tensorboard-logdir; fairseq writes them when tensorboardX is installed: pip install -e '.[tensorboard]').
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
need_args "${BASH_SOURCE[0]}" 2 "$@"
MONO_DATA=$1 LANG_LIST=$2
shift 2
PRETRAINED=${PRETRAINED:-}

need_cmd mtkit
need_file "$LANG_LIST" LANG_LIST "one language code a line, in the model's order"
langs=$(lang_csv "$LANG_LIST")
[[ -n "$langs" ]] || die "LANG_LIST $LANG_LIST is empty"
run mtkit check mono --databin "$MONO_DATA" --langs "$LANG_LIST"
init=() start=$PRETRAINED
[[ -n "$PRETRAINED" ]] && init=(--finetune-from-model "$PRETRAINED")
[[ -n "$start" ]] || start=$(flag_value --restore-file "" "$@")
if [[ -n "$start" && -f "$start" ]]; then
  # dict.txt + [xx_YY] tokens for LANG_LIST + <mask> must give exactly the checkpoint's rows (fairseq #3474)
  run mtkit check vocab --checkpoint "$start" --dict "$MONO_DATA/dict.txt" --langs "$LANG_LIST" --expect-mask yes
elif [[ -n "$PRETRAINED" ]]; then
  die "PRETRAINED: $PRETRAINED does not exist"
fi
device_flags train
train_command
save_dir=$(flag_value --save-dir checkpoints/pretrain "$@")

say "== denoising pretraining on $langs"
run "${TRAIN[@]}" "$MONO_DATA" --user-dir "$(user_dir)" "${DEVICE[@]}" "${init[@]}" \
  --task multilingual_denoising --langs "$langs" --add-lang-token --multilang-sampling-alpha 0.7 \
  --mask 0.35 --mask-random 0.1 --mask-length span-poisson --poisson-lambda 3.5 \
  --replace-length 1 --permute-sentences 1 --rotate 0 --insert 0 \
  --tokens-per-sample 512 --sample-break-mode complete_doc \
  --arch mbart_large --encoder-normalize-before --decoder-normalize-before \
  --layernorm-embedding --share-all-embeddings \
  --criterion cross_entropy --optimizer adam --adam-eps 1e-06 --adam-betas '(0.9, 0.98)' \
  --lr-scheduler inverse_sqrt --lr 3e-4 --warmup-updates 10000 --clip-norm 0.1 \
  --dropout 0.1 --attention-dropout 0.1 --weight-decay 0.01 \
  --max-tokens 4096 --update-freq 1 --max-update 500000 --seed 222 \
  --save-dir "$save_dir" --tensorboard-logdir "$save_dir/tensorboard" \
  --no-epoch-checkpoints --save-interval-updates 5000 --keep-interval-updates 1 \
  --log-format simple --log-interval 50 --no-progress-bar --data-buffer-size 0 \
  "$@"
