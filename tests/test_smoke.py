"""End to end through the real stack: fairseq-train (done by the tiny_model fixture, 3 languages,
translation_multi_simple_epoch, --user-dir "$(mtkit user-dir)") then fairseq-generate on its checkpoint."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_train_then_generate_with_the_plugin(tiny_model):
    log = (tiny_model.root / "train.log").read_text(encoding="utf-8")
    assert "num_updates 800" in log or "done training" in log
    user_dir = subprocess.run([str(BIN / "mtkit"), "user-dir"], capture_output=True, text=True,
                              check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORCH_FORCE")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [str(BIN / "fairseq-generate"), str(tiny_model.databin), "--user-dir", user_dir,
           "--path", str(tiny_model.checkpoint), "--task", "translation_multi_simple_epoch",
           "--lang-dict", str(tiny_model.langs_file), "--lang-pairs", tiny_model.lang_pairs,
           "--source-lang", "de_DE", "--target-lang", "en_XX", "--encoder-langtok", "src",
           "--decoder-langtok", "--gen-subset", "test", "--beam", "2", "--remove-bpe", "sentencepiece",
           "--cpu", "--batch-size", "64"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    hyps = [line for line in res.stdout.splitlines() if line.startswith("H-")]
    assert len(hyps) == 40
    bleu = float(re.search(r"BLEU4 = ([\d.]+)", res.stdout + res.stderr).group(1))
    # the tiny model learned its synthetic cipher language: far above chance
    assert bleu > 20, bleu


@pytest.mark.slow
def test_bf16_training_without_torch_xla(tiny_model, tmp_path):
    """fairseq 0.12 turns --bf16 into --tpu and then wants torch_xla; with the plugin, bf16 trains on
    the device at hand (here the CPU; the GPU check in benchmarks/gpu_check does it on CUDA)."""
    import importlib.util

    from mtkit.testing import tiny_train_args

    assert importlib.util.find_spec("torch_xla") is None
    cmd = [str(BIN / "fairseq-train"), *tiny_train_args(tiny_model.databin, tiny_model.langs_file,
                                                        tiny_model.lang_pairs),
           "--memory-efficient-bf16", "--max-update", "3", "--log-interval", "1",
           "--save-dir", str(tmp_path / "ck")]
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "torch_xla is not installed: training bf16 on the CPU" in out
    losses = [float(x) for x in re.findall(r"loss=([\d.]+),", out)]
    assert len(losses) >= 3 and all(0 < v < 20 for v in losses), out[-2000:]
    from mtkit.checkpoint import load

    ck = load(tmp_path / "ck" / "checkpoint_last.pt")
    # fairseq stores bf16 weights as float32 (move_to_cpu); the run's config says what trained
    assert ck["cfg"]["common"]["memory_efficient_bf16"] and ck["cfg"]["common"]["bf16"]
    assert not ck["cfg"]["common"]["tpu"]
