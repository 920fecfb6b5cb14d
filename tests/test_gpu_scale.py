"""benchmarks/gpu_scale: the FLOPs formula against hand-computed values, and the whole benchmark as a
CPU dry run (tiny sizes, torchrun with one process, results.json) since no GPU is here."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_scale_run", REPO / "benchmarks" / "gpu_scale" / "run.py")
gpu_scale = sys.modules["gpu_scale_run"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_scale)


def test_flops_formula_by_hand() -> None:
    # d=2, f=3, 1+1 layers, V=5, one sentence of 1 token: Ls = 3 source, Lt = 2 target tokens.
    # dense: P_enc = 4*4 + 2*2*3 = 28, P_xkv = 2*4 = 8, P_dec = 6*4 + 12 = 36
    #   linear 6*(3*(28+8) + 2*(36+5*2)) = 1200; attention 12*2*(9 + (4+6)) = 456
    dense = gpu_scale.Config("d", "x", layers=1, dim=2, ffn=3, heads=1)
    assert gpu_scale.flops_per_update(dense, sentences=1, length=1, vocab=5) == 1200 + 456
    # MoE layer, 4 experts, top-2: FFN -> gate 2*4 + 2 experts * 2*2*3 = 32: P_enc = 48, P_dec = 56
    #   linear 6*(3*(48+8) + 2*(56+10)) = 1800
    moe = gpu_scale.Config("m", "x", layers=1, dim=2, ffn=3, heads=1, experts=4, moe_freq=1)
    assert gpu_scale.flops_per_update(moe, sentences=1, length=1, vocab=5) == 1800 + 456
    # every expert counts towards the weights, only two towards a token's FLOPs
    assert gpu_scale.matmul_weights(moe, vocab=5) == 12 * 4 + 2 * (8 + 4 * 12) + 10
    assert gpu_scale.flops_per_update(moe, sentences=3, length=1, vocab=5) == 3 * (1800 + 456)


@pytest.mark.slow
def test_dry_run_writes_results(tmp_path) -> None:
    env = dict(os.environ, GPU_SCALE_WORK=str(tmp_path / "work"), OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_scale" / "run.py"), "--dry",
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["dry"] and [r["name"] for r in results["runs"]] == ["mbart_large_bf16", "nllb_moe_bf16"]
    for run in results["runs"]:
        assert run["rc"] == 0 and "torch.distributed.run" in run["command"]
        assert run["target_tokens_per_s"] > 0 and 0 < run["mfu"]["h200_bf16_matmul_measured"] < 1
        assert run["updates_measured"] == [6, 10] and run["sentences_per_update"] > 0
        # fairseq's parameter count = the formula's weights + biases, layer norms (+ learned positions)
        assert 0 < run["params_fairseq"] - run["matmul_weights_in_formula"] < 0.5 * run["params_fairseq"]
        assert (tmp_path / "out" / f"{run['name']}.log").exists()
    assert results["runs"][1]["moe_layers_per_side"] == 1
