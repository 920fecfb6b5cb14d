#!/usr/bin/env bash
#SBATCH --job-name=nllb_moe
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --time=72:00:00
#SBATCH --output=%x-%j.log
# The NLLB-MoE training recipe as a SLURM job, one fairseq-train process per GPU started by srun
# (see slurm_train in recipes/common.sh). With N tasks and E experts, each GPU holds E/N experts
# (N <= E) or one expert replicated N/E times (N > E), as NLLB-200 (docs/moe.md).
#
#   sbatch recipes/nllb_moe/sbatch.sh train DATA LANG_LIST [fairseq-train args ...]
#   sbatch --nodes 16 recipes/nllb_moe/sbatch.sh train DATA LANG_LIST
#   PRECISION=--memory-efficient-bf16 sbatch recipes/nllb_moe/sbatch.sh train DATA LANG_LIST
#
# Submit from the repository's root with the mtkit environment active (sbatch passes the environment
# on). Adapt the #SBATCH lines (or override them on sbatch's command line) to your cluster; keep
# --ntasks-per-node equal to the GPUs per node.
set -euo pipefail
source "${SLURM_SUBMIT_DIR:-.}/recipes/common.sh"
slurm_train nllb_moe "$@"
