"""Top-1 and top-2 token routing (GShard / NLLB gating), as pure functions plus a small module.

Shapes: S tokens, E experts, C capacity (slots per expert). A routing decision is a list of
*assignments* (token, expert, slot, weight); the MoE layer gathers tokens into an (E*C, M) buffer
with them and scatters expert outputs back. Maths, following NLLB's top2gate.py:

- ``probs = softmax(logits)`` (the caller passes fp32 logits for ``--moe-gating-use-fp32``);
- expert 1 = argmax; expert 2 = argmax of the logits with expert 1 masked out. Policy ``sampling``
  adds Gumbel noise to those logits first, ``all`` always keeps expert 2, ``random`` keeps it when
  ``2*g2 > U(0,1)``;
- padding tokens get no assignment at all;
- slot = running count of earlier tokens sent to the same expert; expert-2 slots start after all
  expert-1 assignments, so first choices fill first; slot >= C means the assignment is dropped;
- weights g1, g2 are renormalised to sum to 1 over the *kept* experts (default), or before
  dropping (``normalize_before_dropping``);
- ``top1_counts`` (tokens per expert by first choice, before dropping, pads excluded) is the
  ``f`` statistic of the balance loss; ``probs`` gives its ``P``;
- ``tight=True`` (what the MoE layer uses) shrinks C to the largest number of assignments any
  expert received when that is below the rule's C: the slots past it would stay empty, so exactly
  the same assignments are kept (same tokens, positions and weights), but the buffer, the experts'
  work and the all-to-all shrink (with ``capacity_fraction`` 1.0, C = S would run every expert on
  S slots). ``sync`` makes the ranks of an expert-parallel group agree on the largest C.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

SECOND_EXPERT_POLICIES = ("sampling", "all", "random")


def capacity(num_tokens: int, num_experts: int, top_k: int, training: bool,
             eval_fraction: float = 1.0, train_fraction: float = 0.0) -> int:
    """Slots per expert: ``k*ceil(S/E)`` in training (``ceil(train_fraction*S)`` if set),
    ``ceil(eval_fraction*S)`` at evaluation (falls back to the training rule when <= 0)."""
    if training and train_fraction > 0:
        return max(1, math.ceil(train_fraction * num_tokens))
    if not training and eval_fraction > 0:
        return max(1, math.ceil(eval_fraction * num_tokens))
    return max(1, top_k * math.ceil(num_tokens / num_experts))


@dataclass
class Routing:
    """The result of gating S tokens over E experts with capacity C."""

    token: torch.Tensor  # (N,) token index of each kept assignment
    slot: torch.Tensor  # (N,) flat slot index expert*C + position
    weight: torch.Tensor  # (N,) combine weight
    probs: torch.Tensor  # (S, E) softmax gate probabilities
    expert1: torch.Tensor  # (S,) first-choice expert of every token (also pads)
    top1_counts: torch.Tensor  # (E,) first-choice counts before dropping, pads excluded
    num_tokens: int  # non-padding tokens
    capacity: int
    stats: dict[str, float] = field(default_factory=dict)


def _slots(mask: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
    """Per-token position inside its expert's buffer: cumsum(mask)-1 (+offset), (S,) int."""
    loc = torch.cumsum(mask, dim=0) - 1
    if offset is not None:
        loc = loc + offset
    return (loc * mask).sum(dim=1)


def _tight(capacity: int, loads: torch.Tensor, sync: Callable[[int], int] | None) -> int:
    """The rule's ``capacity`` cut to the largest expert load (at least 1), agreed over ranks by ``sync``."""
    c = min(capacity, max(1, int(loads.max())))
    return sync(c) if sync is not None else c


def top2_gating(logits: torch.Tensor, capacity: int, pad_mask: torch.Tensor | None = None,
                second_expert_policy: str = "sampling", normalize_before_dropping: bool = False,
                generator: torch.Generator | None = None, tight: bool = False,
                sync: Callable[[int], int] | None = None) -> Routing:
    """Route each token to its two best experts (see module docstring). ``pad_mask`` (S,) is
    True on padding tokens."""
    if second_expert_policy not in SECOND_EXPERT_POLICIES:
        raise ValueError(f"unknown second expert policy {second_expert_policy!r}")
    S, E = logits.shape
    probs = F.softmax(logits, dim=1)
    keep = torch.ones(S, dtype=torch.bool, device=logits.device) if pad_mask is None else ~pad_mask

    idx1 = probs.argmax(dim=1)
    mask1 = F.one_hot(idx1, E) * keep[:, None]
    logits2 = logits
    if second_expert_policy == "sampling":
        u = torch.rand(logits.shape, device=logits.device, dtype=logits.dtype, generator=generator)
        logits2 = logits - torch.log(-torch.log(u.clamp_min(1e-20)).clamp_min(1e-20))  # Gumbel
    idx2 = logits2.masked_fill(F.one_hot(idx1, E).bool(), float("-inf")).argmax(dim=1)
    mask2 = F.one_hot(idx2, E) * keep[:, None]

    g1 = probs.gather(1, idx1[:, None]).squeeze(1)
    g2 = probs.gather(1, idx2[:, None]).squeeze(1)
    if normalize_before_dropping:
        denom = (g1 + g2).clamp_min(torch.finfo(probs.dtype).eps)
        g1, g2 = g1 / denom, g2 / denom
    if second_expert_policy == "random":
        u = torch.rand(S, device=logits.device, dtype=g2.dtype, generator=generator)
        mask2 = mask2 * (2 * g2 > u)[:, None]

    top1_counts = mask1.sum(dim=0)
    if tight:
        capacity = _tight(capacity, top1_counts + mask2.sum(dim=0), sync)
    pos1 = _slots(mask1)
    pos2 = _slots(mask2, offset=top1_counts[None, :])
    kept1 = mask1.any(dim=1) & (pos1 < capacity)
    kept2 = mask2.any(dim=1) & (pos2 < capacity)
    g1 = g1 * kept1
    g2 = g2 * kept2
    if not normalize_before_dropping:
        denom = (g1 + g2).clamp_min(torch.finfo(probs.dtype).eps)
        g1, g2 = g1 / denom, g2 / denom

    tokens = torch.arange(S, device=logits.device)
    token = torch.cat([tokens[kept1], tokens[kept2]])
    slot = torch.cat([idx1[kept1] * capacity + pos1[kept1], idx2[kept2] * capacity + pos2[kept2]])
    weight = torch.cat([g1[kept1], g2[kept2]])

    n1, n2 = int(mask1.sum()), int(mask2.sum())
    stats = {
        "overflow_expert1": 100.0 * (n1 - int(kept1.sum())) / max(n1, 1),
        "overflow_expert2": 100.0 * (n2 - int(kept2.sum())) / max(n2, 1),
    }
    return Routing(token, slot, weight, probs, idx1, top1_counts.to(probs.dtype), int(keep.sum()),
                   capacity, stats)


def top1_gating(logits: torch.Tensor, capacity: int, pad_mask: torch.Tensor | None = None, tight: bool = False,
                sync: Callable[[int], int] | None = None) -> Routing:
    """Route each token to its best expert with weight = its gate probability (NLLB top1gate)."""
    S, E = logits.shape
    probs = F.softmax(logits, dim=1)
    keep = torch.ones(S, dtype=torch.bool, device=logits.device) if pad_mask is None else ~pad_mask
    idx1 = probs.argmax(dim=1)
    mask1 = F.one_hot(idx1, E) * keep[:, None]
    top1_counts = mask1.sum(dim=0)
    if tight:
        capacity = _tight(capacity, top1_counts, sync)
    pos1 = _slots(mask1)
    kept1 = mask1.any(dim=1) & (pos1 < capacity)
    g1 = probs.gather(1, idx1[:, None]).squeeze(1)
    tokens = torch.arange(S, device=logits.device)
    n1 = int(mask1.sum())
    stats = {"overflow_expert1": 100.0 * (n1 - int(kept1.sum())) / max(n1, 1)}
    return Routing(tokens[kept1], idx1[kept1] * capacity + pos1[kept1], g1[kept1], probs, idx1,
                   top1_counts.to(probs.dtype), int(keep.sum()), capacity, stats)


class Gate(nn.Module):
    """``wg = Linear(d_model, E, bias=False)`` followed by top-1 or top-2 routing."""

    def __init__(self, model_dim: int, num_experts: int, top_k: int = 2, use_fp32: bool = True,
                 second_expert_policy: str = "sampling", normalize_before_dropping: bool = False,
                 eval_capacity_fraction: float = 1.0, train_capacity_fraction: float = 0.0):
        super().__init__()
        if top_k not in (1, 2):
            raise ValueError("only top-1 and top-2 gating are supported")
        self.wg = nn.Linear(model_dim, num_experts, bias=False)
        self.num_experts, self.top_k, self.use_fp32 = num_experts, top_k, use_fp32
        self.second_expert_policy = second_expert_policy
        self.normalize_before_dropping = normalize_before_dropping
        self.eval_capacity_fraction = eval_capacity_fraction
        self.train_capacity_fraction = train_capacity_fraction

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None, tight: bool = True,
                sync: Callable[[int], int] | None = None) -> Routing:
        """Routing of the S tokens of ``x`` (S, M), with the capacity cut to the largest load
        (``tight``, see the module docstring; ``sync`` agrees on it over an expert-parallel group)."""
        if self.use_fp32:
            logits = F.linear(x.float(), self.wg.weight.float())
        else:
            logits = self.wg(x)
        cap = capacity(x.shape[0], self.num_experts, self.top_k, self.training,
                       self.eval_capacity_fraction, self.train_capacity_fraction)
        if self.top_k == 1 or self.num_experts == 1:  # no second expert to choose
            return top1_gating(logits, cap, pad_mask, tight=tight, sync=sync)
        policy = self.second_expert_policy
        if not self.training and policy == "sampling":
            policy = "all"  # no noise at inference
        return top2_gating(logits, cap, pad_mask, policy, self.normalize_before_dropping, tight=tight, sync=sync)
