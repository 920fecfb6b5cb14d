#!/usr/bin/env bash
# Multilingual denoising (continued) pretraining of mBART with fairseq's multilingual_denoising task:
# span-poisson masking (lambda 3.5) of 35% of the words, sentence permutation, a [xx_YY] language
# token per instance, and temperature-like language sampling (--multilang-sampling-alpha).
#
# Inputs (environment variables; defaults in brackets):
#   MONO        monolingual databin: dict.txt + {lang}/{train,valid}.{bin,idx} (mtkit data binarize --mono)
#   LANGS       language list (file, one code a line, or comma list); its order fixes the token ids.
#               When continuing from a checkpoint it must start with the checkpoint's languages.
#   SAVE_DIR    [checkpoints/pretrain]
#   INIT        checkpoint to continue from (optional; e.g. the output of mtkit extend-langs). It is
#               loaded with --finetune-from-model (fresh optimizer) unless RESTORE_OPTIMIZER=1
#               (then --restore-file, keeping Adam's state and the update count).
#   ARCH [mbart_large]  ARCH_ARGS [""]  extra architecture flags (e.g. smaller layers)
#   MAX_UPDATE [500000] STOP_TIME_HOURS [0 = none] LR [3e-4] WARMUP [10000] MAX_TOKENS [4096]
#   UPDATE_FREQ [1] ALPHA [0.7] TOKENS_PER_SAMPLE [512] MASK [0.35] POISSON_LAMBDA [3.5]
#   DEVICE_ARGS ["" ; "--cpu" on machines without CUDA]   EXTRA_ARGS [""]   DRY_RUN [0]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"

MONO=${MONO:?set MONO to the monolingual databin (dict.txt + one folder per language)}
LANGS=${LANGS:?set LANGS to the language list (file or comma list)}
SAVE_DIR=${SAVE_DIR:-checkpoints/pretrain}
INIT=${INIT:-}
RESTORE_OPTIMIZER=${RESTORE_OPTIMIZER:-0}
ARCH=${ARCH:-mbart_large}
ARCH_ARGS=${ARCH_ARGS:-}
MAX_UPDATE=${MAX_UPDATE:-500000}
STOP_TIME_HOURS=${STOP_TIME_HOURS:-0}
LR=${LR:-3e-4}
WARMUP=${WARMUP:-10000}
MAX_TOKENS=${MAX_TOKENS:-4096}
UPDATE_FREQ=${UPDATE_FREQ:-1}
ALPHA=${ALPHA:-0.7}
TOKENS_PER_SAMPLE=${TOKENS_PER_SAMPLE:-512}
MASK=${MASK:-0.35}
POISSON_LAMBDA=${POISSON_LAMBDA:-3.5}
DEVICE_ARGS=${DEVICE_ARGS:-}
EXTRA_ARGS=${EXTRA_ARGS:-}
SEED=${SEED:-222}

need_cmd "$MTKIT"; need_cmd "$FAIRSEQ_TRAIN"
langs=$(langs_csv "$LANGS")
[[ -n "$langs" ]] || die "LANGS is empty"
run "$MTKIT" check mono --databin "$MONO" --langs "$langs"
init_args=()
if [[ -n "$INIT" ]]; then
  need_file "$INIT" INIT "the checkpoint to continue pretraining from"
  # dict.txt + [lang] tokens for LANGS + <mask> must give exactly the checkpoint's rows (fairseq #3474)
  run "$MTKIT" check vocab --checkpoint "$INIT" --dict "$MONO/dict.txt" \
      --langs "$langs" --expect-mask yes
  if [[ "$RESTORE_OPTIMIZER" == 1 ]]; then init_args=(--restore-file "$INIT")
  else init_args=(--finetune-from-model "$INIT"); fi
fi
if [[ -z "$DEVICE_ARGS" ]] && ! "$PYTHON" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  DEVICE_ARGS=--cpu
fi

say "== denoising pretraining on: $langs -> $SAVE_DIR"
# shellcheck disable=SC2086  # ARCH_ARGS / EXTRA_ARGS / DEVICE_ARGS are word lists on purpose
run "$FAIRSEQ_TRAIN" "$MONO" --user-dir "$(user_dir)" $DEVICE_ARGS \
  --task multilingual_denoising --langs "$langs" --add-lang-token \
  --multilang-sampling-alpha "$ALPHA" \
  --mask "$MASK" --mask-random 0.1 --mask-length span-poisson --poisson-lambda "$POISSON_LAMBDA" \
  --replace-length 1 --permute-sentences 1 --rotate 0 --insert 0 \
  --tokens-per-sample "$TOKENS_PER_SAMPLE" --sample-break-mode complete_doc \
  --arch "$ARCH" $ARCH_ARGS --encoder-normalize-before --decoder-normalize-before \
  --layernorm-embedding --share-all-embeddings \
  --criterion cross_entropy --optimizer adam --adam-eps 1e-06 --adam-betas '(0.9, 0.98)' \
  --lr-scheduler inverse_sqrt --lr "$LR" --warmup-updates "$WARMUP" --clip-norm 0.1 \
  --dropout 0.1 --attention-dropout 0.1 --weight-decay 0.01 \
  --max-tokens "$MAX_TOKENS" --update-freq "$UPDATE_FREQ" --max-update "$MAX_UPDATE" \
  --stop-time-hours "$STOP_TIME_HOURS" --seed "$SEED" \
  --save-dir "$SAVE_DIR" --no-epoch-checkpoints --save-interval-updates 5000 --keep-interval-updates 1 \
  --log-format simple --log-interval 50 --no-progress-bar --data-buffer-size 0 \
  "${init_args[@]}" $EXTRA_ARGS
