"""MoE model end to end: registration, fairseq-train (1 process and 2 gloo processes with expert
parallelism), the NLLB checkpoint layout, reload and fairseq-generate."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import moe_train_args

from mtkit.plugin import register, user_dir

BIN = Path(sys.executable).parent
register()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _losses(log: str) -> list[float]:
    out = []
    for line in log.splitlines():
        if "| train_inner |" in line:
            out.append(float(json.loads(line.split("| train_inner |", 1)[1])["loss"]))
    return out


@pytest.fixture(scope="module")
def moe_runs(tiny_model, tmp_path_factory):  # noqa: ANN001, ANN201
    """One process with --update-freq 2 and two gloo processes (2 experts each) on the same
    batches, started together."""
    root = tmp_path_factory.mktemp("moe_runs")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    train = str(BIN / "fairseq-train")
    one = subprocess.Popen([train, *moe_train_args(tiny_model, root / "one"), "--update-freq", "2"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    port = _free_port()
    two = [subprocess.Popen([train, *moe_train_args(tiny_model, root / "two"), "--distributed-world-size", "2",
                             "--distributed-rank", str(r), "--distributed-no-spawn", "--distributed-backend", "gloo",
                             "--distributed-init-method", f"tcp://127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
           for r in (0, 1)]
    # every other option once: global balance with gradient accumulation, micro weight, EOM, CMR, top-1
    opts = subprocess.Popen([train, *moe_train_args(tiny_model, root / "opts", max_update=3), "--update-freq", "2",
                             "--moe-balance", "global", "--moe-balance-micro-weight", "0.01", "--moe-eom", "0.2",
                             "--moe-cmr", "--cmr-gate-loss-wt", "0.1", "--cmr-gate-loss-p", "0.8",
                             "--moe-freq", "0", "--encoder-moe-freq", "2", "--decoder-moe-freq", "1",
                             "--moe-top1-expert"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    logs = {}
    for name, proc in (("one", one), ("rank0", two[0]), ("rank1", two[1]), ("opts", opts)):
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"{name} failed:\n{out[-4000:]}"
        logs[name] = out
    return root, logs, tiny_model


def test_registered_with_fairseq() -> None:
    from fairseq.criterions import CRITERION_REGISTRY
    from fairseq.models import ARCH_MODEL_REGISTRY

    from mtkit.models.transformer_moe import _is_moe

    for arch in ("transformer_moe", "transformer_moe_tiny", "transformer_moe_24_24_big"):
        assert ARCH_MODEL_REGISTRY[arch].__name__ == "TransformerMoEModel"
    assert "moe_label_smoothed_cross_entropy" in CRITERION_REGISTRY
    # NLLB-200: MoE every 4th layer of 24 -> layers 4, 8, ..., 24 (1-based)
    assert [i + 1 for i in range(24) if _is_moe(i, 4)] == [4, 8, 12, 16, 20, 24]


def test_nllb_architecture_defaults() -> None:
    import argparse

    from mtkit.models.transformer_moe import transformer_moe_24_24_big

    args = argparse.Namespace()
    transformer_moe_24_24_big(args)
    assert (args.encoder_layers, args.encoder_embed_dim, args.encoder_ffn_embed_dim,
            args.encoder_attention_heads) == (24, 2048, 8192, 16)
    assert (args.moe_expert_count, args.moe_freq, args.moe_eom, args.moe_second_expert_policy) == (128, 4, 0.2, "all")
    assert args.share_all_embeddings and args.encoder_normalize_before and args.moe_gating_use_fp32


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process(moe_runs) -> None:  # noqa: ANN001
    _, logs, _ = moe_runs
    one, two = _losses(logs["one"]), _losses(logs["rank0"])
    assert len(one) == len(two) == 5
    assert one == pytest.approx(two, abs=2e-3)  # logged with 3 decimals
    assert one[-1] < one[0]
    assert "gate_loss" in logs["one"] and "moe_lang_specialisation" in logs["one"]


@pytest.mark.slow
def test_other_options_train(moe_runs) -> None:  # noqa: ANN001
    from mtkit import checkpoint

    root, logs, _ = moe_runs
    assert len(_losses(logs["opts"])) == 3
    assert "cmr_gate" in logs["opts"]
    keys = checkpoint.load(root / "opts" / "checkpoint_last-shared.pt")["model"]
    # --decoder-moe-freq 1: both decoder layers are MoE; --encoder-moe-freq 2: only encoder layer 2
    assert "decoder.layers.0.moe_layer.gate.wg.weight" in keys
    assert "encoder.layers.0.fc1.weight" in keys and "encoder.layers.1.cmr_gate.proj.weight" in keys
    assert "encoder.layers.1.cmr_fc1.weight" in keys


@pytest.mark.slow
def test_checkpoint_layout_and_reload(moe_runs) -> None:  # noqa: ANN001
    from mtkit import checkpoint
    from mtkit.moe_checkpoint import load_merged, load_moe_for_inference

    root, _, _ = moe_runs
    two = root / "two"
    names = sorted(p.name for p in two.iterdir())
    assert names == ["checkpoint_last-rank-0.pt", "checkpoint_last-rank-1.pt", "checkpoint_last-shared.pt"]
    shared = checkpoint.load(two / "checkpoint_last-shared.pt")
    rank1 = checkpoint.load(two / "checkpoint_last-rank-1.pt")
    assert not any("expert" in k for k in shared["model"])
    assert "encoder.layers.1.moe_layer.gate.wg.weight" in shared["model"]
    # rank 1 holds global experts 2 and 3 under local numbers 0 and 1 (NLLB layout)
    assert rank1["moe"]["local_experts"] == [2, 3]
    assert {re.sub(r"\.experts\.\d+\.", ".experts.K.", k) for k in rank1["model"]} == {
        f"{side}.layers.1.moe_layer.experts.K.{fc}.{w}"
        for side in ("encoder", "decoder") for fc in ("fc1", "fc2") for w in ("weight", "bias")}
    # merged for one process: all 4 experts, equal to the single-process run's weights
    merged = load_moe_for_inference(str(two / "checkpoint_last"))
    single = load_moe_for_inference(str(root / "one" / "checkpoint_last-rank-0.pt"))
    assert set(merged["model"]) == set(single["model"])
    for k, v in single["model"].items():
        assert torch.allclose(merged["model"][k], v, atol=1e-4), k
    key = "decoder.layers.1.moe_layer.experts.{}.fc1.weight"
    assert torch.equal(merged["model"][key.format(3)], rank1["model"][key.format(1)])
    # the slice a rank of a 4-process job would load: expert 3 only, renumbered to 0
    part = load_merged(str(two / "checkpoint_last-shared.pt"), world_size=4, rank=3)
    assert torch.equal(part["model"][key.format(0)], rank1["model"][key.format(1)])
    assert key.format(1) not in part["model"]


@pytest.mark.slow
def test_fairseq_generate_one_process_with_all_experts(moe_runs) -> None:  # noqa: ANN001
    root, _, tiny = moe_runs
    cmd = [str(BIN / "fairseq-generate"), str(tiny.databin), "--user-dir", user_dir(), "--cpu",
           "--path", str(root / "two" / "checkpoint_last-shared.pt"), "--task", "translation_multi_simple_epoch",
           "--lang-dict", str(tiny.langs_file), "--lang-pairs", tiny.lang_pairs, "--encoder-langtok", "src",
           "--decoder-langtok", "--source-lang", "en_XX", "--target-lang", "de_DE", "--gen-subset", "test",
           "--beam", "2", "--max-tokens", "1000", "--max-len-b", "10"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stderr[-3000:]
    hyps = [line for line in res.stdout.splitlines() if line.startswith("H-")]
    assert len(hyps) == 40


#: transformers' own fairseq NLLB-MoE converter, last shipped in this release (scripts/setup.sh --test
#: downloads the wheel; the function is read from it, never copied into this repository)
HF_CONVERTER_WHEEL = Path(sys.prefix) / "share" / "mtkit-test" / "transformers-4.46.3-py3-none-any.whl"
HF_CONVERTER = "transformers/models/nllb_moe/convert_nllb_moe_sharded_original_checkpoint_to_pytorch.py"


def _hf_rename_fairseq_keys():
    """``rename_fairseq_keys`` of transformers' NLLB-MoE converter, compiled from the released file
    (the module itself imports transformers 4.46, so only this pure function is taken from it)."""
    import ast
    import zipfile

    assert HF_CONVERTER_WHEEL.is_file(), f"{HF_CONVERTER_WHEEL} is missing: run bash scripts/setup.sh --test"
    source = zipfile.ZipFile(HF_CONVERTER_WHEEL).read(HF_CONVERTER).decode("utf-8")
    fn = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "rename_fairseq_keys")
    namespace: dict = {}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), HF_CONVERTER, "exec"), namespace)  # noqa: S102
    return namespace["rename_fairseq_keys"]


@pytest.mark.slow
def test_keys_follow_hf_nllb_moe_converter(moe_runs, tmp_path) -> None:  # noqa: ANN001
    """One file per expert (as the converter reads them) renamed by the converter's rules gives
    exactly the layer parameters of transformers' NllbMoeModel of the same shape."""
    import transformers

    from mtkit import checkpoint
    from mtkit.moe_checkpoint import reshard

    rename = _hf_rename_fairseq_keys()
    root, _, _ = moe_runs
    reshard(str(root / "two" / "checkpoint_last"), str(tmp_path / "ck"), num_ranks=4)
    shared = checkpoint.load(tmp_path / "ck-shared.pt")["model"]
    ours = {k for k in rename({k: None for k in shared if ".layers." in k})}
    for e in range(4):
        part = checkpoint.load(tmp_path / f"ck-rank-{e}.pt")["model"]
        assert all(".experts.0." in k for k in part)
        ours |= set(rename(dict.fromkeys(part), expert_idx=e))
    cfg = transformers.NllbMoeConfig(vocab_size=200, d_model=64, encoder_layers=2, decoder_layers=2, encoder_ffn_dim=128,
                        decoder_ffn_dim=128, encoder_attention_heads=4, decoder_attention_heads=4, num_experts=4,
                        encoder_sparse_step=2, decoder_sparse_step=2)
    theirs = {k for k in transformers.NllbMoeModel(cfg).state_dict() if ".layers." in k}
    assert ours == theirs
