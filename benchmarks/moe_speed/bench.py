"""Forward+backward speed of mtkit's MoE layer vs transformers' NllbMoeSparseMLP and vs a dense
FFN with the same active FLOPs; step time with global vs micro balance. See README.md.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/moe_speed/bench.py [--tokens 2048 --dim 256 ...]

Prints one JSON object: every repeat's time per variant (ms), their medians, and paired ratios (the
two variants' times within the same repeat, their median and range).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from mtkit.modules.moe import MoELayer


def fwd_bwd(module: nn.Module, x: torch.Tensor, call: Callable, aux: Callable | None = None) -> Callable[[], None]:
    def step() -> None:
        module.zero_grad(set_to_none=True)
        xi = x.detach().requires_grad_(True)
        loss = call(module, xi).float().pow(2).mean()
        if aux is not None:
            loss = loss + 0.01 * aux(module)
        loss.backward()
    return step


def timed(fns: dict[str, Callable[[], None]], repeats: int, warmup: int) -> dict[str, list[float]]:
    """Every variant's time (ms) in each repeat; the variants run one after another inside a repeat."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):  # interleaved so that machine load hits every variant alike
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - t0) * 1000)
    return samples


def per_repeat_ratios(num: list[float], den: list[float]) -> dict[str, Any]:
    """Ratio of the two variants' times within each repeat (side by side), with median and range."""
    r = [a / b for a, b in zip(num, den)]
    return {"median": round(statistics.median(r), 3), "min": round(min(r), 3), "max": round(max(r), 3),
            "per_repeat": [round(x, 3) for x in r]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    load = os.getloadavg()[0]
    torch.manual_seed(0)
    dev = torch.device(args.device)
    S, M, F, E = args.tokens, args.dim, args.ffn, args.experts
    x = torch.randn(S, M, device=dev)

    def ours(balance: str) -> MoELayer:
        torch.manual_seed(0)
        return MoELayer(M, F, E, top_k=2, second_expert_policy="all", balance=balance).to(dev).train()

    micro, glob = ours("micro"), ours("global")
    # dropless (capacity = every token, as at inference with --moe-eval-capacity-token-fraction 1.0, and in
    # training with --moe-train-capacity-token-fraction 1.0): mtkit's buffer of the busiest expert's load
    # vs every expert over all S slots (NLLB's layer; tight_capacity=False)
    torch.manual_seed(0)
    dropless = MoELayer(M, F, E, top_k=2, second_expert_policy="all", train_capacity_fraction=1.0).to(dev).train()
    torch.manual_seed(0)
    dropless_full = MoELayer(M, F, E, top_k=2, second_expert_policy="all", train_capacity_fraction=1.0).to(dev).train()
    dropless_full.tight_capacity = False
    dense = nn.Sequential(nn.Linear(M, 2 * F), nn.ReLU(), nn.Linear(2 * F, M)).to(dev)  # top-2 active FLOPs

    import transformers as tf
    from transformers.models.nllb_moe.modeling_nllb_moe import NllbMoeSparseMLP

    cfg = tf.NllbMoeConfig(d_model=M, num_experts=E, expert_capacity=2 * -(-S // E), second_expert_policy="all",
                           normalize_router_prob_before_dropping=False, moe_token_dropout=0.0,
                           router_dtype="float32", activation_function="relu", activation_dropout=0.0)
    hf = NllbMoeSparseMLP(cfg, F).to(dev).train()

    fns = {
        "mtkit_moe": fwd_bwd(micro, x, lambda m, xi: m(xi)),
        "hf_nllb_moe": fwd_bwd(hf, x[None], lambda m, xi: m(xi)),
        "dense_ffn_2F": fwd_bwd(dense, x, lambda m, xi: m(xi)),
        "step_micro_balance": fwd_bwd(micro, x, lambda m, xi: m(xi), aux=lambda m: m.l_aux),
        "step_global_balance": fwd_bwd(glob, x, lambda m, xi: m(xi), aux=lambda m: m.l_aux),
        "mtkit_moe_dropless": fwd_bwd(dropless, x, lambda m, xi: m(xi)),
        "mtkit_moe_dropless_all_slots": fwd_bwd(dropless_full, x, lambda m, xi: m(xi)),
    }
    samples = timed(fns, args.repeats, args.warmup)
    ms = {k: statistics.median(v) for k, v in samples.items()}
    result = {
        "settings": {"tokens": S, "dim": M, "ffn": F, "experts": E, "top_k": 2, "capacity": 2 * -(-S // E),
                     "second_expert_policy": "all", "device": str(dev), "threads": torch.get_num_threads(),
                     "torch": torch.__version__, "transformers": tf.__version__, "repeats": args.repeats,
                     "load_1min_at_start": round(load, 2)},
        "ms_fwd_bwd_median": {k: round(v, 2) for k, v in ms.items()},
        "ms_fwd_bwd": {k: [round(x, 2) for x in v] for k, v in samples.items()},
        "tokens_per_s_median": {k: round(S / (v / 1000)) for k, v in ms.items()},
        "paired_ratios": {
            "hf_over_mtkit (target >= 2)": per_repeat_ratios(samples["hf_nllb_moe"], samples["mtkit_moe"]),
            "mtkit_over_dense (target <= 1.3)": per_repeat_ratios(samples["mtkit_moe"], samples["dense_ffn_2F"]),
            "global_over_micro_step (target <= 1.03)": per_repeat_ratios(samples["step_global_balance"],
                                                                          samples["step_micro_balance"]),
            "dropless_all_slots_over_busiest_load": per_repeat_ratios(samples["mtkit_moe_dropless_all_slots"],
                                                                      samples["mtkit_moe_dropless"]),
        },
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
