"""Conditional MoE Routing (NLLB moe_cmr_layer.py): out = (1-g)*FFN_dense(x) + g*MoE(x),
g = sigmoid(Linear(d,1)(x)), dropout on g, g = 0 on padding. Budget loss |mean_nonpad(g) - p|."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def cmr_loss(gate_sum: torch.Tensor, num_tokens: torch.Tensor | float, target: float) -> torch.Tensor:
    """``|sum_nonpad g / N_nonpad - p|``."""
    n = num_tokens if isinstance(num_tokens, torch.Tensor) else torch.tensor(float(num_tokens))
    return torch.abs(gate_sum / n.clamp_min(1) - target)


class CMRGate(nn.Module):
    """The scalar gate g(x) of CMR; ``forward`` returns g (S, 1) with pads zeroed."""

    def __init__(self, model_dim: int, gate_drop: float = 0.0):
        super().__init__()
        self.proj = nn.Linear(model_dim, 1)
        self.gate_drop = gate_drop
        self.last_sum: torch.Tensor | None = None
        self.last_count: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        g = torch.sigmoid(self.proj(x.float()))
        g = F.dropout(g, self.gate_drop, self.training)
        if pad_mask is not None:
            g = g * (~pad_mask)[:, None].to(g.dtype)
        n = g.new_tensor(float(x.shape[0] if pad_mask is None else int((~pad_mask).sum())))
        self.last_sum, self.last_count = g.sum(), n
        return g.to(x.dtype)
