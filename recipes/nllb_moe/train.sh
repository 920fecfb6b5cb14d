#!/usr/bin/env bash
# NLLB-200-style sparse MoE translation model with mtkit's transformer_moe (a fairseq plugin).
#
#   recipes/nllb_moe/train.sh DATA LANG_LIST [fairseq-train args ...]
#
#   DATA       parallel databin (mtkit data binarize --out X makes X/databin)
#   LANG_LIST  the language list file, one code a line: it fixes the language-token ids
#   args       any fairseq-train flags; they come last, so they override the defaults below. One GPU:
#                --encoder-layers 6 --decoder-layers 6 --encoder-embed-dim 512 --decoder-embed-dim 512
#                --encoder-ffn-embed-dim 2048 --decoder-ffn-embed-dim 2048 --moe-expert-count 8
#                --moe-freq 2 --max-update 2000 --warmup-updates 400
#              global load balancing (Qiu et al. 2025): --moe-balance global
#
# Environment (mtkit's inputs only):
#   MODE       m2m [default] (en<->x) | o2m | m2o: the default --lang-pairs, over the languages of
#              LANG_LIST with training data in DATA
#   PRECISION  [--memory-efficient-fp16 on a GPU, nothing on a CPU]: the mixed-precision flag
#              (flags cannot be unset from args). --memory-efficient-bf16 works without torch_xla
#              (mtkit's plugin unties fairseq 0.12's --bf16 from --tpu). Not plain --fp16/--bf16:
#              their flattened fp32 copy loses the per-parameter expert tag, so expert gradients would
#              enter the gradient norm that fairseq checks for equality across ranks.
#   LAUNCH     launcher before fairseq-train, e.g. "torchrun --nproc-per-node 8" or "srun"
#              (see recipes/README.md)
#
# The defaults are NLLB-200's MoE settings (NLLB Team 2022, arXiv 2207.04672): 24+24 layers of
# dimension 2048 (FFN 8192, 16 heads), 128 experts in every 4th layer, Expert Output Masking 0.2,
# lr 0.002 with 8000 warmup updates, dropout 0.3, label smoothing 0.1, gate loss 0.01 summed over
# layers, second expert "all", fp32 gating, evaluation capacity 1.0. MoE needs --ddp-backend
# legacy_ddp. Checkpoints: checkpoint_*-shared.pt + checkpoint_*-rank-{r}.pt (NLLB's layout).
# Learning curves (train/valid loss, lr, ... over updates) go to SAVE_DIR/tensorboard (--save-dir,
# --tensorboard-logdir; fairseq writes them when tensorboardX is installed: pip install -e '.[tensorboard]').
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
need_args "${BASH_SOURCE[0]}" 2 "$@"
DATA=$1 LANG_LIST=$2
shift 2

need_cmd mtkit
checked_pairs "$DATA" "$LANG_LIST" train "$@"
device_flags train
train_command
save_dir=$(flag_value --save-dir checkpoints/nllb_moe "$@")
if [[ -z "${PRECISION+x}" ]]; then
  PRECISION=--memory-efficient-fp16; [[ " ${DEVICE[*]} " == *" --cpu "* ]] && PRECISION=""
fi
read -r -a precision <<<"$PRECISION"

say "== MoE training on $PAIRS"
run "${TRAIN[@]}" "$DATA" --user-dir "$(user_dir)" "${DEVICE[@]}" "${precision[@]}" \
  --task translation_multi_simple_epoch --lang-dict "$LANG_LIST" --lang-pairs "$PAIRS" \
  --encoder-langtok src --decoder-langtok --sampling-method temperature --sampling-temperature 1 \
  --arch transformer_moe_24_24_big --share-all-embeddings \
  --encoder-normalize-before --decoder-normalize-before \
  --moe-expert-count 128 --moe-freq 4 --moe-eom 0.2 \
  --moe-second-expert-policy all --moe-gating-use-fp32 --moe-eval-capacity-token-fraction 1.0 \
  --moe-balance micro --moe-balance-micro-weight 0 \
  --criterion moe_label_smoothed_cross_entropy --label-smoothing 0.1 \
  --moe-gate-loss-wt 0.01 --moe-gate-loss-combine-method sum --moe-log-lang-usage \
  --dropout 0.3 --attention-dropout 0.1 --relu-dropout 0.0 \
  --optimizer adam --adam-betas '(0.9, 0.98)' --adam-eps 1e-6 --clip-norm 0.0 --weight-decay 0.0 \
  --lr 0.002 --lr-scheduler inverse_sqrt --warmup-updates 8000 --warmup-init-lr 1e-7 \
  --stop-min-lr 1e-9 --max-update 300000 \
  --max-tokens 4096 --update-freq 1 --max-tokens-valid 1024 \
  --max-source-positions 512 --max-target-positions 512 --skip-invalid-size-inputs-valid-test \
  --ddp-backend legacy_ddp --save-dir "$save_dir" --tensorboard-logdir "$save_dir/tensorboard" \
  --save-interval-updates 10000 --validate-interval-updates 20000 --best-checkpoint-metric nll_loss \
  --seed 2 --log-format simple --log-interval 100 --no-progress-bar \
  "$@"
