#!/usr/bin/env bash
# NLLB-200 MoE training with mtkit's transformer_moe (fairseq plugin). Defaults are NLLB's
# (fairseq_anchors.md §4.2: transformer_24_24_big, 128 experts, MoE every 4th layer, EOM 0.2,
# lr 0.002, warmup 8000, dropout 0.3, max-tokens 4096, label smoothing 0.1, gate loss 0.01 summed
# over layers, second expert "all", fp32 gating, eval capacity 1.0); every value can be scaled down
# through the environment, e.g. for one GPU:
#
#   DATABIN=work/mini/bin/databin LANGS=work/mini/bin/databin/langs.txt NGPUS=1 \
#   ARCH=transformer_moe EXTRA="--encoder-layers 6 --decoder-layers 6 --encoder-embed-dim 512 \
#   --decoder-embed-dim 512 --encoder-ffn-embed-dim 2048 --decoder-ffn-embed-dim 2048" EXPERTS=8 MOE_FREQ=2 \
#   MAX_UPDATE=2000 WARMUP=400 recipes/nllb_moe/train_gpu.sh
#
# Environment (defaults in brackets):
#   DATABIN (required)   LANGS [$DATABIN/langs.txt]   LANG_PAIRS [en_XX<->every other language]
#   SAVE_DIR [work/nllb_moe/checkpoints]   NGPUS [all visible GPUs]
#   ARCH [transformer_moe_24_24_big]   EXPERTS [128]   MOE_FREQ [4]   EOM [0.2]
#   BALANCE [micro] (global = Qiu et al. 2025)   MICRO_WT [0, e.g. 0.01 with BALANCE=global]
#   GATE_WT [0.01]   LR [0.002]   WARMUP [8000]   MAX_UPDATE [300000]   DROPOUT [0.3]
#   MAX_TOKENS [4096]   UPDATE_FREQ [1]   TEMP [1]
#   PRECISION [--memory-efficient-fp16] (NLLB; or --memory-efficient-bf16, which fairseq 0.12 would turn into
#     --tpu: mtkit's plugin undoes that when torch_xla is absent). Not plain --fp16/--bf16: their
#     flattened fp32 copy loses the per-parameter expert tag, so expert grads would enter the grad norm
#     that fairseq checks for equality across ranks.
#   SAVE_UPDATES [10000]   VALID_UPDATES [20000]   EXTRA [] (appended to fairseq-train)
# Checkpoints: SAVE_DIR/checkpoint_*-shared.pt + checkpoint_*-rank-{r}.pt (NLLB layout).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! command -v mtkit >/dev/null 2>&1 && [[ -x "$repo/.venv/bin/mtkit" ]]; then export PATH="$repo/.venv/bin:$PATH"; fi
: "${DATABIN:?set DATABIN to a fairseq databin (mtkit data binarize)}"
LANGS=${LANGS:-$DATABIN/langs.txt}
if [[ -z "${LANG_PAIRS:-}" ]]; then
  LANG_PAIRS=$(grep -v '^en_XX$' "$LANGS" | awk 'NF{printf "%sen_XX-%s,%s-en_XX", (n++?",":""), $1, $1}')
fi
NGPUS=${NGPUS:-$(python3 -c "import torch; print(max(torch.cuda.device_count(), 1))" 2>/dev/null || echo 1)}

exec fairseq-train "$DATABIN" --user-dir "$(mtkit user-dir)" \
  --task translation_multi_simple_epoch --lang-dict "$LANGS" --lang-pairs "$LANG_PAIRS" \
  --encoder-langtok src --decoder-langtok --sampling-method temperature --sampling-temperature "${TEMP:-1}" \
  --arch "${ARCH:-transformer_moe_24_24_big}" --share-all-embeddings \
  --encoder-normalize-before --decoder-normalize-before \
  --moe-expert-count "${EXPERTS:-128}" --moe-freq "${MOE_FREQ:-4}" --moe-eom "${EOM:-0.2}" \
  --moe-second-expert-policy all --moe-gating-use-fp32 --moe-eval-capacity-token-fraction 1.0 \
  --moe-balance "${BALANCE:-micro}" --moe-balance-micro-weight "${MICRO_WT:-0}" \
  --criterion moe_label_smoothed_cross_entropy --label-smoothing 0.1 \
  --moe-gate-loss-wt "${GATE_WT:-0.01}" --moe-gate-loss-combine-method sum --moe-log-lang-usage \
  --dropout "${DROPOUT:-0.3}" --attention-dropout 0.1 --relu-dropout 0.0 \
  --optimizer adam --adam-betas '(0.9, 0.98)' --adam-eps 1e-6 --clip-norm 0.0 --weight-decay 0.0 \
  --lr "${LR:-0.002}" --lr-scheduler inverse_sqrt --warmup-updates "${WARMUP:-8000}" --warmup-init-lr 1e-7 \
  --stop-min-lr 1e-9 --max-update "${MAX_UPDATE:-300000}" \
  --max-tokens "${MAX_TOKENS:-4096}" --update-freq "${UPDATE_FREQ:-1}" --max-tokens-valid 1024 \
  --max-source-positions 512 --max-target-positions 512 --skip-invalid-size-inputs-valid-test \
  ${PRECISION:---memory-efficient-fp16} --ddp-backend legacy_ddp --distributed-world-size "$NGPUS" \
  --save-dir "${SAVE_DIR:-work/nllb_moe/checkpoints}" --save-interval-updates "${SAVE_UPDATES:-10000}" \
  --validate-interval-updates "${VALID_UPDATES:-20000}" --best-checkpoint-metric nll_loss \
  --seed 2 --log-format simple --log-interval 100 ${EXTRA:-}
