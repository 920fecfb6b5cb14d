"""The sparsely gated MoE feed-forward layer: gate -> dispatch -> experts -> combine.

``MoELayer.forward(x, pad_mask)`` takes S tokens (S, M) and returns (S, M). Steps:

1. (expert parallel) pad S to the largest S of the all-to-all group so every rank uses the same
   capacity rule; padded rows are marked as padding and never routed;
2. the gate (fp32) assigns tokens to (expert, slot) pairs of an (E*C, M) buffer; C is the capacity
   rule's, cut to the largest expert load (the group's largest, expert parallel) when that is
   smaller: the same assignments are kept, without running experts on empty slots
   (``tight_capacity``; False runs every expert on all C slots of the rule, as NLLB does);
3. the buffer is filled by indexing (no dense S x E x C one-hot matmuls);
4. (expert parallel) an all-to-all sends each expert's slots to the rank that holds it; every
   local expert runs on its slots from all ranks; a second all-to-all brings them back;
5. EOM (Expert Output Masking, ``eom`` = p): in training each slot's output row is zeroed with
   probability p, without rescaling; at evaluation outputs are scaled by (1-p);
6. tokens sum their expert outputs weighted by the gate; dropped tokens get zeros (the residual
   connection of the transformer layer carries them).

The balance loss of the last call is left in ``self.l_aux`` (with routing statistics in
``self.metadata``) for the criterion. ``balance`` = "micro" (NLLB) or "global" (Qiu et al. 2025,
with ``micro_weight`` times the micro loss added).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mtkit.modules.moe import parallel
from mtkit.modules.moe.balance import GlobalCounts, global_balance_loss, micro_balance_loss
from mtkit.modules.moe.gate import Gate


class Expert(nn.Module):
    """One FFN expert: fc2(dropout(act(fc1(x)))), initialised from its own generator so that
    expert k gets the same weights whichever rank builds it."""

    def __init__(self, model_dim: int, ffn_dim: int, activation: str = "relu",
                 activation_dropout: float = 0.0, seed: int = 0):
        super().__init__()
        self.fc1 = nn.utils.skip_init(nn.Linear, model_dim, ffn_dim)
        self.fc2 = nn.utils.skip_init(nn.Linear, ffn_dim, model_dim)
        g = torch.Generator().manual_seed(seed)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(fc.weight, generator=g)
            nn.init.zeros_(fc.bias)
        self.activation = activation
        self.activation_dropout = activation_dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        h = F.gelu(h) if self.activation == "gelu" else F.relu(h)
        h = F.dropout(h, self.activation_dropout, self.training)
        return self.fc2(h)


class MoELayer(nn.Module):
    def __init__(self, model_dim: int, ffn_dim: int, num_experts: int, top_k: int = 2,
                 activation: str = "relu", activation_dropout: float = 0.0, use_fp32_gate: bool = True,
                 second_expert_policy: str = "sampling", normalize_before_dropping: bool = False,
                 eval_capacity_fraction: float = 1.0, train_capacity_fraction: float = 0.0,
                 eom: float = 0.0, balance: str = "micro", micro_weight: float = 0.0,
                 seed: int = 0, layer_id: int = 0):
        super().__init__()
        if balance not in ("micro", "global"):
            raise ValueError(f"--moe-balance must be micro or global, not {balance!r}")
        self.gate = Gate(model_dim, num_experts, top_k, use_fp32_gate, second_expert_policy,
                         normalize_before_dropping, eval_capacity_fraction, train_capacity_fraction)
        self.layout, self.a2a_group, replica_group = parallel.current_layout(num_experts)
        self.experts = nn.ModuleList(
            Expert(model_dim, ffn_dim, activation, activation_dropout,
                   seed=seed * 1_000_003 + layer_id * 10_007 + k)
            for k in self.layout.local_experts
        )
        parallel.mark_expert_params(self.experts, self.layout.world, replica_group,
                                    len(self.layout.replica_ranks))
        self.num_experts, self.eom = num_experts, eom
        self.balance, self.micro_weight = balance, micro_weight
        self.counts = GlobalCounts(num_experts)
        self.tight_capacity = True
        self.l_aux: torch.Tensor | None = None
        self.metadata: dict = {}

    @property
    def ep_size(self) -> int:
        return len(self.layout.a2a_ranks)

    def set_num_updates(self, num_updates: int) -> None:
        self.counts.set_num_updates(num_updates)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        S, M = x.shape
        if pad_mask is None:
            pad_mask = torch.zeros(S, dtype=torch.bool, device=x.device)
        if self.ep_size > 1:  # equal S (hence equal capacity) on all ranks of the group
            S_max = parallel.all_reduce_max(S, self.a2a_group)
            if S_max > S:
                x = torch.cat([x, x.new_zeros(S_max - S, M)])
                pad_mask = torch.cat([pad_mask, pad_mask.new_ones(S_max - S)])

        sync = (lambda c: parallel.all_reduce_max(c, self.a2a_group)) if self.ep_size > 1 else None
        routing = self.gate(x, pad_mask, tight=self.tight_capacity, sync=sync)
        self._record(routing, pad_mask, S)
        E, C = self.num_experts, routing.capacity

        buf = x.new_zeros(E * C, M).index_copy(0, routing.slot, x[routing.token])
        out = self._run_experts(buf.view(E, C, M)).view(E * C, M)
        if self.eom > 0:
            if self.training:
                keep = torch.rand(E * C, 1, device=x.device) > self.eom
                out = out * keep.to(out.dtype)
            else:
                out = out * (1.0 - self.eom)
        weights = routing.weight.to(x.dtype)[:, None]
        y = x.new_zeros(x.shape[0], M).index_add(0, routing.token, out[routing.slot] * weights)
        return y[:S]

    def _run_experts(self, buf: torch.Tensor) -> torch.Tensor:
        """(E, C, M) slots of all experts -> their outputs, possibly across ranks."""
        if self.ep_size == 1:
            return torch.stack([expert(buf[k]) for k, expert in enumerate(self.experts)])
        E, C, M = buf.shape
        L = self.layout.num_local
        received = parallel.all_to_all(buf, self.a2a_group).view(self.ep_size, L, C, M)
        outs = torch.stack([expert(received[:, j]) for j, expert in enumerate(self.experts)], dim=1)
        return parallel.all_to_all(outs.reshape(E, C, M), self.a2a_group)

    def _record(self, routing, pad_mask: torch.Tensor, S: int) -> None:  # noqa: ANN001
        """Balance loss and statistics for the criterion."""
        micro = micro_balance_loss(routing.probs, routing.top1_counts, pad_mask)
        if self.balance == "global" and self.training:
            loss = global_balance_loss(routing.probs, routing.top1_counts, self.counts, pad_mask)
            if self.micro_weight > 0:
                loss = loss + self.micro_weight * micro
        else:
            loss = micro
        self.l_aux = loss
        counts = routing.top1_counts.detach()
        self.metadata = dict(routing.stats)
        self.metadata["unused_expert1_count"] = float((counts == 0).sum())
        share = counts / counts.sum().clamp_min(1)
        self.metadata["expert1_balance_max"] = float(share.max()) * self.num_experts
        self.metadata["expert1"] = routing.expert1[:S].detach()
        self.metadata["pad_mask"] = pad_mask[:S]
