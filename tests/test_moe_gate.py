"""Hand-computed checks of the MoE gate, balance losses, EOM and CMR (fast, no fairseq run)."""
from __future__ import annotations

import math

import pytest
import torch

from mtkit.modules.moe import (
    CMRGate,
    GlobalCounts,
    MoELayer,
    balance_loss,
    capacity,
    cmr_loss,
    global_balance_loss,
    micro_balance_loss,
    top1_gating,
    top2_gating,
)
from mtkit.modules.moe.parallel import expert_layout

# 4 tokens, 3 experts. First choices: 0, 0, 1, 0; second choices: 1, 2, 0, 1.
LOGITS = torch.tensor([[2.0, 1.0, 0.0], [2.0, 0.0, 1.0], [1.0, 2.0, 0.0], [3.0, 1.0, 0.0]])


def softmax_row(row: list[float]) -> list[float]:
    z = sum(math.exp(v) for v in row)
    return [math.exp(v) / z for v in row]


P = [softmax_row(r) for r in LOGITS.tolist()]


def assignments(r):  # noqa: ANN001, ANN201
    return sorted(zip(r.token.tolist(), r.slot.tolist(), [round(w, 6) for w in r.weight.tolist()]))


def test_capacity_rules() -> None:
    assert capacity(10, 4, 2, training=True) == 2 * math.ceil(10 / 4) == 6
    assert capacity(10, 4, 1, training=True) == 3
    assert capacity(10, 4, 2, training=False, eval_fraction=0.25) == 3
    assert capacity(10, 4, 2, training=False, eval_fraction=0.0) == 6  # falls back to training rule
    assert capacity(10, 4, 2, training=True, train_fraction=1.0) == 10


def test_top2_capacity_dropping_and_renormalisation_after() -> None:
    # C = 2. Expert-1 slots: e0 <- t0 (0), t1 (1), t3 (2: dropped); e1 <- t2 (0).
    # Expert-2 slots start after the expert-1 counts (3, 1, 0): e1 <- t0 (1), t3 (2: dropped);
    # e2 <- t1 (0); e0 <- t2 (3: dropped). Flat slot = expert*C + position.
    r = top2_gating(LOGITS, capacity=2, second_expert_policy="all")
    w0 = P[0][0] / (P[0][0] + P[0][1])  # = sigmoid(1)
    assert abs(w0 - 1 / (1 + math.exp(-1))) < 1e-12
    expected = sorted([(0, 0, w0), (0, 3, 1 - w0), (1, 1, w0), (1, 4, 1 - w0), (2, 2, 1.0)])
    assert assignments(r) == [(t, s, round(w, 6)) for t, s, w in expected]
    assert r.top1_counts.tolist() == [3.0, 1.0, 0.0]
    assert r.stats["overflow_expert1"] == 25.0 and r.stats["overflow_expert2"] == 50.0
    assert r.expert1.tolist() == [0, 0, 1, 0]


def test_top2_normalise_before_dropping() -> None:
    r = top2_gating(LOGITS, capacity=2, second_expert_policy="all", normalize_before_dropping=True)
    w2 = P[2][1] / (P[2][1] + P[2][0])  # t2 keeps only expert 1, with its pre-dropping share
    got = {(t, s): w for t, s, w in assignments(r)}
    assert got[(2, 2)] == round(w2, 6)


def test_padding_tokens_are_not_routed_nor_counted() -> None:
    pad = torch.tensor([False, False, False, True])
    r = top2_gating(LOGITS, capacity=2, pad_mask=pad, second_expert_policy="all")
    assert 3 not in r.token.tolist()
    assert r.top1_counts.tolist() == [2.0, 1.0, 0.0] and r.num_tokens == 3
    assert r.stats["overflow_expert1"] == 0.0


def test_second_expert_policies() -> None:
    torch.manual_seed(0)
    logits = torch.randn(200, 4)
    for policy in ("sampling", "random", "all"):
        r = top2_gating(logits, capacity=400, second_expert_policy=policy)
        n_second = r.token.numel() - 200
        # no token gets the same expert twice
        experts = r.slot // 400
        pairs = set(zip(r.token.tolist(), experts.tolist()))
        assert len(pairs) == r.token.numel()
        if policy == "all":
            assert n_second == 200
        if policy == "random":
            assert 0 < n_second < 200
    with pytest.raises(ValueError):
        top2_gating(logits, 10, second_expert_policy="nope")


@pytest.mark.parametrize("top_k", [1, 2])
def test_tight_capacity_keeps_the_same_assignments_in_fewer_slots(top_k: int) -> None:
    """Cutting C to the largest expert load keeps exactly the rule's assignments (token, expert,
    position, weight); only the flat slot numbers change with C. With a rule C below the load
    (drops happen) nothing changes at all."""
    torch.manual_seed(1)
    logits = torch.randn(300, 8)
    logits[:, 3] += 2.0  # one popular expert: unequal loads
    pad = torch.zeros(300, dtype=torch.bool)
    pad[-7:] = True
    gating = (lambda c, **kw: top1_gating(logits, c, pad, **kw)) if top_k == 1 else \
        (lambda c, **kw: top2_gating(logits, c, pad, second_expert_policy="all", **kw))
    for rule_c in (300, 60):
        full, tight = gating(rule_c), gating(rule_c, tight=True)
        loads = torch.bincount(full.slot // rule_c, minlength=8)
        if rule_c == 300:  # no drops: the largest load decides
            assert tight.capacity == int(loads.max()) < rule_c
        else:  # the popular expert overflows: C stays the rule's
            assert full.stats["overflow_expert1"] > 0 and tight.capacity == rule_c
        as_pos = lambda r: sorted(zip(r.token.tolist(), (r.slot // r.capacity).tolist(),  # noqa: E731
                                      (r.slot % r.capacity).tolist(), r.weight.tolist()))
        assert as_pos(tight) == as_pos(full)
        assert tight.stats == full.stats and torch.equal(tight.top1_counts, full.top1_counts)
    # an expert-parallel group agrees on the largest C of its ranks
    assert gating(300, tight=True, sync=lambda c: c + 5).capacity == gating(300, tight=True).capacity + 5


@pytest.mark.parametrize("training", [False, True])
def test_tight_capacity_layer_output_and_gradients_are_exactly_the_rules(training: bool) -> None:
    layer = MoELayer(16, 32, 8, second_expert_policy="all", train_capacity_fraction=1.0)
    layer.train(training)
    x = torch.randn(120, 16, requires_grad=True)
    got = {}
    for tight in (False, True):
        layer.tight_capacity = tight
        layer.zero_grad()
        x.grad = None
        y = layer(x)
        (y * torch.arange(16.0)).sum().backward()
        got[tight] = [y.detach(), x.grad.clone(), layer.gate.wg.weight.grad.clone(),
                      *(p.grad.clone() for p in layer.experts.parameters()), layer.l_aux.detach()]
    assert torch.equal(got[False][0], got[True][0])  # the output, row by row the same products
    for a, b in zip(got[False][1:], got[True][1:]):  # gradients summed over slots: no empty rows added
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-6)


def test_top1_weight_is_raw_probability() -> None:
    r = top1_gating(LOGITS, capacity=2)
    assert assignments(r) == [(0, 0, round(P[0][0], 6)), (1, 1, round(P[1][0], 6)), (2, 2, round(P[2][1], 6))]


def test_micro_balance_loss_hand_value() -> None:
    me = [sum(P[t][e] for t in range(4)) / 4 for e in range(3)]
    f = [3 / 4, 1 / 4, 0.0]
    expected = 3 * sum(m * x for m, x in zip(me, f))  # = mean_e(me*ce) * E^2
    r = top2_gating(LOGITS, capacity=2, second_expert_policy="all")
    assert abs(float(micro_balance_loss(r.probs, r.top1_counts)) - expected) < 1e-6
    # uniform routing gives exactly 1
    assert float(balance_loss(torch.full((4,), 0.25), torch.full((4,), 0.25))) == pytest.approx(1.0)


def test_balance_loss_gradient_flows_only_through_probabilities() -> None:
    probs = torch.tensor([0.5, 0.3, 0.2], requires_grad=True)
    f = torch.tensor([0.6, 0.4, 0.0], requires_grad=True)
    balance_loss(probs, f).backward()
    assert probs.grad.tolist() == pytest.approx([3 * 0.6, 3 * 0.4, 0.0])
    assert f.grad is None


def test_global_counts_accumulate_and_reset() -> None:
    buf = GlobalCounts(3)
    buf.set_num_updates(0)
    probs_a, counts_a = torch.tensor([[0.6, 0.3, 0.1]] * 2), torch.tensor([2.0, 0.0, 0.0])
    probs_b, counts_b = torch.tensor([[0.2, 0.7, 0.1]] * 2), torch.tensor([0.0, 2.0, 0.0])
    la = global_balance_loss(probs_a, counts_a, buf)
    assert float(la) == pytest.approx(3 * 0.6)  # only micro-batch a so far: f = (1, 0, 0)
    lb = global_balance_loss(probs_b, counts_b, buf)
    assert float(lb) == pytest.approx(3 * (0.5 * 0.2 + 0.5 * 0.7))  # f = (0.5, 0.5, 0) over a+b
    buf.set_num_updates(0)  # same update: kept
    assert buf.counts.tolist() == [2.0, 2.0, 0.0]
    buf.set_num_updates(1)  # after the optimizer step: reset
    assert buf.counts is None
    assert float(global_balance_loss(probs_b, counts_b, buf)) == pytest.approx(3 * 0.7)


def test_expert_layout_sharding_and_replication() -> None:
    assert expert_layout(2, 1, 4).local_experts == [2, 3]
    lay = expert_layout(8, 5, 4)  # more ranks than experts: replicated twice
    assert lay.local_experts == [1]
    assert lay.a2a_ranks == [4, 5, 6, 7] and lay.replica_ranks == [1, 5]
    with pytest.raises(ValueError):
        expert_layout(3, 0, 4)


def _layer(**kw) -> MoELayer:  # noqa: ANN003
    torch.manual_seed(0)
    return MoELayer(8, 16, 4, second_expert_policy="all", train_capacity_fraction=1.0, **kw)


def test_moe_layer_matches_explicit_mixture() -> None:
    layer = _layer().eval()
    x = torch.randn(6, 8)
    y = layer(x)
    probs = torch.softmax(x @ layer.gate.wg.weight.t(), dim=1)
    top = probs.topk(2, dim=1)
    for t in range(6):
        w = top.values[t] / top.values[t].sum()
        ref = sum(w[i] * layer.experts[int(top.indices[t, i])](x[t]) for i in range(2))
        assert torch.allclose(y[t], ref, atol=1e-5)


def test_eom_masks_in_training_and_scales_in_eval() -> None:
    x = torch.randn(6, 8)
    plain = _layer().eval()(x)
    assert torch.allclose(_layer(eom=0.5).eval()(x), 0.5 * plain, atol=1e-6)
    masked = _layer(eom=1.0).train()(x)
    assert torch.count_nonzero(masked) == 0  # every expert output dropped, no rescaling
    # p = 0.5: each token's output is the sum of a subset of its two weighted expert outputs (a dropped
    # slot contributes nothing, kept ones are not rescaled), and about half of the slots are dropped
    layer = _layer(eom=0.5).train()
    x = torch.randn(400, 8)
    torch.manual_seed(3)
    y = layer(x)
    with torch.no_grad():
        probs = torch.softmax(x @ layer.gate.wg.weight.t(), dim=1)
        top = probs.topk(2, dim=1)
        dropped = 0
        for t in range(x.shape[0]):
            w = top.values[t] / top.values[t].sum()
            parts = [w[i] * layer.experts[int(top.indices[t, i])](x[t]) for i in range(2)]
            subsets = {(0, 0): torch.zeros(8), (1, 0): parts[0], (0, 1): parts[1], (1, 1): parts[0] + parts[1]}
            kept = [k for k, v in subsets.items() if torch.allclose(y[t], v, atol=1e-5)]
            assert kept, f"token {t}: output is not a subset sum of its expert outputs"
            dropped += 2 - sum(kept[0])
    assert 0.4 < dropped / (2 * x.shape[0]) < 0.6


def test_cmr_gate_and_loss() -> None:
    gate = CMRGate(8)
    pad = torch.tensor([False, True, False])
    g = gate(torch.randn(3, 8), pad)
    assert float(g[1].detach()) == 0.0
    assert float(gate.last_count) == 2.0
    assert float(cmr_loss(torch.tensor(1.5), 2, 0.8)) == pytest.approx(0.05)
    assert float(cmr_loss(torch.tensor(0.6), torch.tensor(2.0), 0.8)) == pytest.approx(0.5)
