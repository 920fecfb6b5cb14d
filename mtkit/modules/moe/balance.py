"""Load-balancing losses: GShard/NLLB micro-batch loss and the global-batch variant.

Both are ``E * sum_i f_i * P_i`` (equal to 1 for perfectly uniform routing):

- ``P_i`` = mean gate probability of expert i over the local non-padding tokens (carries the
  gradient);
- ``f_i`` = fraction of tokens whose *first* choice is expert i (no gradient; fairseq/NLLB
  convention: top-1 counts, before capacity dropping).

Micro-batch balance (NLLB): f from the tokens of this forward pass on this rank.
Global-batch balance (Qiu et al. 2025): f from the per-expert counts all-reduced over the
data-parallel ranks and accumulated over the gradient-accumulation micro-batches of the current
optimizer step (reset by ``reset()`` when the update number changes); P stays local. Averaging
the per-rank losses then gives ``E * sum_i fbar_i * Pbar_i`` over the global batch (exactly so
when the ranks hold equal token counts).
"""
from __future__ import annotations

import torch
import torch.distributed as dist


def balance_loss(mean_probs: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    """``E * sum_i f_i * P_i`` = NLLB's ``mean_e(me*ce) * E**2``."""
    num_experts = mean_probs.shape[-1]
    return num_experts * torch.sum(mean_probs * fractions.detach())


def mean_probs(probs: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
    """P: mean gate probability per expert over non-padding tokens, (E,)."""
    if pad_mask is not None:
        probs = probs[~pad_mask]
    if probs.shape[0] == 0:
        return probs.new_zeros(probs.shape[-1]) if probs.dim() == 2 else probs.sum(0)
    return probs.mean(dim=0)


def micro_balance_loss(probs: torch.Tensor, top1_counts: torch.Tensor,
                       pad_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The GShard/NLLB loss of one micro-batch on one rank."""
    fractions = top1_counts / top1_counts.sum().clamp_min(1)
    return balance_loss(mean_probs(probs, pad_mask), fractions)


class GlobalCounts:
    """Per-expert first-choice counts of the current optimizer step, summed over data-parallel
    ranks (``group``) and gradient-accumulation micro-batches. One instance per MoE layer."""

    def __init__(self, num_experts: int, group: object | None = None):
        self.num_experts = num_experts
        self.group = group
        self.counts: torch.Tensor | None = None
        self.num_updates: int | None = None

    def reset(self) -> None:
        self.counts = None

    def set_num_updates(self, num_updates: int) -> None:
        """Called by fairseq after every optimizer step: start a fresh buffer."""
        if num_updates != self.num_updates:
            self.num_updates = num_updates
            self.reset()

    def add(self, top1_counts: torch.Tensor) -> torch.Tensor:
        """All-reduce this micro-batch's counts, add them to the buffer, return global fractions."""
        counts = top1_counts.detach().to(torch.float64).clone()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size(self.group) > 1:
            dist.all_reduce(counts, group=self.group)
        self.counts = counts if self.counts is None else self.counts + counts
        return (self.counts / self.counts.sum().clamp_min(1)).to(top1_counts.dtype)


def global_balance_loss(probs: torch.Tensor, top1_counts: torch.Tensor, buffer: GlobalCounts,
                        pad_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Global-batch loss for this rank: global f from ``buffer``, local P."""
    return balance_loss(mean_probs(probs, pad_mask), buffer.add(top1_counts))
