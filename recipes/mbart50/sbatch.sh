#!/usr/bin/env bash
#SBATCH --job-name=mbart50
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --time=48:00:00
#SBATCH --output=%x-%j.log
# An mBART-50 training recipe (pretrain or finetune) as a SLURM job, one fairseq-train process per
# GPU started by srun (see slurm_train in recipes/common.sh):
#
#   sbatch recipes/mbart50/sbatch.sh finetune DATA LANG_LIST [fairseq-train args ...]
#   sbatch --nodes 4 recipes/mbart50/sbatch.sh pretrain MONO_DATA LANG_LIST [fairseq-train args ...]
#   PRETRAINED=model.pt MODE=o2m sbatch recipes/mbart50/sbatch.sh finetune DATA LANG_LIST
#
# Submit from the repository's root with the mtkit environment active (sbatch passes the environment
# on). Adapt the #SBATCH lines (or override them on sbatch's command line) to your cluster; keep
# --ntasks-per-node equal to the GPUs per node.
set -euo pipefail
source "${SLURM_SUBMIT_DIR:-.}/recipes/common.sh"
slurm_train mbart50 "$@"
