"""Expert parallelism over torch.distributed: process groups and an autograd-aware all-to-all.

Layout (NLLB, distributed/utils.py):
- ``world <= E``: rank r holds experts ``r*L .. r*L+L-1`` (L = E/world); one all-to-all group
  of all ranks; no replicas.
- ``world > E``: one expert per rank, expert ``r % E``, replicated ``world/E`` times;
  all-to-all groups ``[[i*E + j for j < E] for i < world/E]``, replica groups
  ``[[i + j*E for j < world/E] for i < E]``.

Expert gradients are not averaged like the rest of the model (the all-to-all backward already
brings every rank's contribution to the expert's owner): :func:`mark_expert_params` tags them
``p.expert = True`` (fairseq's legacy_ddp and clip_grad_norm_ skip those), lists them in
``_ddp_params_and_buffers_to_ignore`` (torch DDP, ``--ddp-backend c10d``) and adds a gradient hook
that sums over replicas and divides by the world size, which cancels fairseq's
``world_size / sample_size`` multiplication of the (averaged) gradients.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class ExpertLayout:
    world: int
    rank: int
    num_experts: int
    local_experts: list[int]  # global ids of the experts this rank holds
    a2a_ranks: list[int]  # ranks exchanging tokens with this one (one per expert shard)
    replica_ranks: list[int]  # ranks holding the same experts

    @property
    def num_local(self) -> int:
        return len(self.local_experts)


def expert_layout(world: int, rank: int, num_experts: int) -> ExpertLayout:
    """Pure description of which experts rank ``rank`` holds and whom it talks to."""
    if world <= num_experts:
        if num_experts % world:
            raise ValueError(f"--moe-expert-count {num_experts} is not a multiple of the world size {world}")
        local = num_experts // world
        return ExpertLayout(world, rank, num_experts, list(range(rank * local, (rank + 1) * local)),
                            list(range(world)), [rank])
    if world % num_experts:
        raise ValueError(f"world size {world} is not a multiple of --moe-expert-count {num_experts}")
    E = num_experts
    return ExpertLayout(world, rank, E, [rank % E], [(rank // E) * E + j for j in range(E)],
                        [rank % E + j * E for j in range(world // E)])


_GROUPS: dict[tuple, object] = {}


def _group(ranks: list[int], world: int) -> object | None:
    """A process group for ``ranks`` (None = the default group when it spans the world, or
    unused when it is a single rank)."""
    if len(ranks) == world or len(ranks) == 1:
        return None
    return _GROUPS[tuple(ranks)]


def current_layout(num_experts: int) -> tuple[ExpertLayout, object | None, object | None]:
    """This process's layout and its (all-to-all, replica) groups. Groups are created on every
    rank in the same order, as torch.distributed requires."""
    if not (dist.is_available() and dist.is_initialized()):
        return expert_layout(1, 0, num_experts), None, None
    world, rank = dist.get_world_size(), dist.get_rank()
    layout = expert_layout(world, rank, num_experts)
    if world > num_experts:
        for r in range(world):  # every rank builds every group once
            other = expert_layout(world, r, num_experts)
            for ranks in (other.a2a_ranks, other.replica_ranks):
                if tuple(ranks) not in _GROUPS and 1 < len(ranks) < world:
                    _GROUPS[tuple(ranks)] = dist.new_group(ranks)
    return layout, _group(layout.a2a_ranks, world), _group(layout.replica_ranks, world)


class _AllToAll(torch.autograd.Function):
    """``all_to_all_single`` along dim 0; its backward is the reverse all-to-all."""

    @staticmethod
    def forward(ctx, group, x):  # noqa: ANN001
        ctx.group = group
        x = x.contiguous()
        out = torch.empty_like(x)
        dist.all_to_all_single(out, x, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001
        return None, _AllToAll.apply(ctx.group, grad)


def all_to_all(x: torch.Tensor, group: object | None) -> torch.Tensor:
    """Split ``x`` into world-many equal chunks along dim 0, send chunk r to rank r (autograd-aware)."""
    return _AllToAll.apply(group, x)


def all_reduce_max(value: int, group: object | None = None) -> int:
    t = torch.tensor([value], dtype=torch.long)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
    return int(t.item())


def mark_expert_params(module: torch.nn.Module, world: int, replica_group: object | None,
                       num_replicas: int) -> None:
    """Tag the parameters of ``module`` as expert parameters (see module docstring)."""
    for p in module.parameters():
        p.expert = True
        if world > 1 and p.requires_grad:
            def hook(grad: torch.Tensor, _w: int = world) -> torch.Tensor:
                if num_replicas > 1:
                    grad = grad.clone()
                    dist.all_reduce(grad, group=replica_group)
                return grad / _w
            p.register_hook(hook)


def ddp_ignore_expert_params(model: torch.nn.Module) -> None:
    """Make torch DDP (``--ddp-backend c10d``) skip parameters tagged ``expert``."""
    names = [n for n, p in model.named_parameters() if getattr(p, "expert", False)]
    model._ddp_params_and_buffers_to_ignore = names
