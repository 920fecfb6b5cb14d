"""torch.distributed (gloo, 2 processes) checks of the MoE maths:

- the global-batch balance loss on 2 ranks equals the single-process loss over the concatenated
  batch (averaged over ranks, as data-parallel gradient averaging does);
- an expert-parallel MoE layer (2 experts per rank, all-to-all) gives the same outputs and
  gradients as one process holding all 4 experts;
- with more ranks than experts (2 ranks, 1 expert, replicated) the replicas end with the same
  gradient, equal to the single-process one.
"""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mtkit.modules.moe import GlobalCounts, MoELayer, global_balance_loss, micro_balance_loss

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(12, 8, generator=g), torch.randn(12, 8, generator=g)  # inputs, output weights


def _layer(num_experts: int) -> MoELayer:
    torch.manual_seed(0)  # same gate on every rank; experts are seeded by their global id
    return MoELayer(8, 16, num_experts, second_expert_policy="all", train_capacity_fraction=1.0)


def _worker(rank: int, world: int, port: int, num_experts: int, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        x, w = _data()
        half = slice(rank * 6, rank * 6 + 6)
        # global balance: probs and counts of this rank's half
        probs = torch.softmax(x[half] @ torch.randn(8, 4, generator=torch.Generator().manual_seed(1)), dim=1)
        counts = torch.nn.functional.one_hot(probs.argmax(1), 4).sum(0).float()
        out[f"global{rank}"] = float(global_balance_loss(probs, counts, GlobalCounts(4)))
        # expert-parallel layer
        layer = _layer(num_experts)
        xr = x[half].clone().requires_grad_(True)
        y = layer(xr)
        (y * w[half]).sum().backward()
        out[f"y{rank}"] = y.detach()
        out[f"xgrad{rank}"] = xr.grad
        out[f"experts{rank}"] = {layer.layout.local_experts[j]: e.fc1.weight.grad.clone()
                                 for j, e in enumerate(layer.experts)}
        out[f"wg{rank}"] = layer.gate.wg.weight.grad.clone()
    finally:
        dist.destroy_process_group()


def _run(world: int, num_experts: int) -> dict:
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(world, _free_port(), num_experts, out), nprocs=world, join=True)
    return dict(out)


def test_global_balance_and_expert_parallel_layer_match_single_process() -> None:
    out = _run(2, 4)
    x, w = _data()
    probs = torch.softmax(x @ torch.randn(8, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    counts = torch.nn.functional.one_hot(probs.argmax(1), 4).sum(0).float()
    concat = float(micro_balance_loss(probs, counts))
    assert (out["global0"] + out["global1"]) / 2 == pytest.approx(concat, rel=1e-6)
    assert out["global0"] != pytest.approx(out["global1"])  # local P differs

    layer = _layer(4)
    xs = x.clone().requires_grad_(True)
    y = layer(xs)
    (y * w).sum().backward()
    assert torch.allclose(torch.cat([out["y0"], out["y1"]]), y.detach(), atol=1e-5)
    assert torch.allclose(torch.cat([out["xgrad0"], out["xgrad1"]]), xs.grad, atol=1e-5)
    # expert grads: owner holds the sum over both ranks' tokens, divided by the world size
    # (fairseq multiplies every grad by world_size / sample_size afterwards)
    held = {**out["experts0"], **out["experts1"]}
    assert sorted(held) == [0, 1, 2, 3]
    for k, g in held.items():
        assert torch.allclose(2 * g, layer.experts[k].fc1.weight.grad, atol=1e-5), k
    # the gate is data-parallel: the two local grads sum to the single-process grad
    assert torch.allclose(out["wg0"] + out["wg1"], layer.gate.wg.weight.grad, atol=1e-5)


def test_more_ranks_than_experts_replicates() -> None:
    out = _run(2, 1)
    x, w = _data()
    layer = _layer(1)
    y = layer(x)
    (y * w).sum().backward()
    assert torch.allclose(torch.cat([out["y0"], out["y1"]]), y.detach(), atol=1e-5)
    g0, g1 = out["experts0"][0], out["experts1"][0]
    assert torch.allclose(g0, g1, atol=1e-6)  # replicas agree after the replica all-reduce
    assert torch.allclose(2 * g0, layer.experts[0].fc1.weight.grad, atol=1e-5)
