"""The recipes as a fairseq user runs them: positional inputs, fairseq flags passed through last,
the shared helpers of recipes/common.sh, and launch under torchrun (2 CPU ranks, gloo)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRAINING = ("mbart50/finetune.sh", "mbart50/pretrain.sh", "nllb_moe/train.sh")


def common(snippet: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f'source "{REPO}/recipes/common.sh"; {snippet}'],
                          capture_output=True, text=True)


def test_flag_value_is_the_value_fairseq_sees():
    """argparse keeps the last occurrence, in either spelling; absent flags give the default."""
    res = common('flag_value --lang-pairs DEF --lang-pairs a-b --x y --lang-pairs=c-d --beam 4')
    assert res.stdout.strip() == "c-d"
    assert common('flag_value --lang-pairs DEF --beam 4').stdout.strip() == "DEF"
    assert common('flag_value --save-dir DEF --save-dir').stdout.strip() == "DEF"  # no value after it


def test_pairs_and_languages_with_data(tmp_path):
    (tmp_path / "langs.txt").write_text("de_DE\nen_XX\nsi_LK\nfr_XX\n\n")
    for name in ("train.en_XX-de_DE.de_DE.idx", "train.en_XX-si_LK.si_LK.idx", "test.en_XX-fr_XX.fr_XX.idx"):
        (tmp_path / name).write_text("")
    res = common(f'langs_with_data {tmp_path} {tmp_path}/langs.txt train')
    assert res.stdout.strip() == "de_DE,en_XX,si_LK"
    assert common('pairs_for m2m de_DE,en_XX,si_LK').stdout.strip() == "en_XX-de_DE,de_DE-en_XX,en_XX-si_LK,si_LK-en_XX"
    assert common('pairs_for o2m de_DE,en_XX').stdout.strip() == "en_XX-de_DE"
    assert common('pairs_for m2o de_DE,en_XX').stdout.strip() == "de_DE-en_XX"
    bad = common('pairs_for x2y de_DE,en_XX')
    assert bad.returncode == 2 and "MODE must be m2m, o2m or m2o" in bad.stderr


def test_launch_prefix_comes_from_launch():
    exe = str(BIN / "fairseq-train")
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    plain = subprocess.run(["bash", "-c", f'source "{REPO}/recipes/common.sh"; train_command; echo "${{TRAIN[@]}}"'],
                           capture_output=True, text=True, env=env)
    assert plain.stdout.strip() == exe
    torchrun = subprocess.run(["bash", "-c", f'source "{REPO}/recipes/common.sh"; train_command; echo "${{TRAIN[@]}}"'],
                              capture_output=True, text=True, env={**env, "LAUNCH": "torchrun --nproc-per-node 2"})
    assert torchrun.stdout.strip() == f"torchrun --nproc-per-node 2 {exe}"


@pytest.mark.parametrize("recipe", [*TRAINING, "mbart50/generate.sh"])
def test_recipe_usage(recipe):
    """Without its inputs a recipe prints its usage (status 2); with --help too (status 0)."""
    path = REPO / "recipes" / recipe
    res = subprocess.run(["bash", str(path)], capture_output=True, text=True)
    assert res.returncode == 2 and f"recipes/{recipe}" in res.stderr and "[fairseq-" in res.stderr
    assert subprocess.run(["bash", str(path), "--help"], capture_output=True, text=True).returncode == 0


def test_recipes_document_only_what_exists():
    """Every environment variable a recipe's header documents is read by the recipe (or common.sh),
    and no recipe cites a file outside the repository."""
    import re

    shared = (REPO / "recipes/common.sh").read_text()
    for recipe in (*TRAINING, "mbart50/generate.sh", "mini/run.sh"):
        text = (REPO / "recipes" / recipe).read_text()
        header = text.split("set -euo pipefail")[0]
        code = text[len(header):] + shared
        documented = set(re.findall(r"^#\s+([A-Z][A-Z_]+)\s", header, re.M))
        assert documented, recipe
        for var in documented:
            assert re.search(rf"\b{var}\b", code), f"{recipe} documents {var} but never reads it"
        assert "../shared" not in text and "refs/" not in text and "anchors" not in text


def test_slurm_template_needs_a_slurm_job(tmp_path):
    """Outside SLURM the template says so instead of starting anything."""
    env = dict(os.environ, SLURM_SUBMIT_DIR=str(REPO))
    env.pop("SLURM_NTASKS", None)
    res = subprocess.run(["bash", str(REPO / "recipes/mbart50/sbatch.sh"), "finetune", "D", "L"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "not inside a SLURM job" in res.stderr
    res = subprocess.run(["bash", str(REPO / "recipes/mbart50/sbatch.sh"), "nope", "D", "L"],
                         capture_output=True, text=True, env={**env, "SLURM_NTASKS": "2"})
    assert res.returncode == 2 and "no such recipe" in res.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_finetune_recipe_under_torchrun_on_two_cpu_ranks(tiny_model, tmp_path):
    """LAUNCH="torchrun --nproc-per-node 2" runs finetune.sh unchanged from a pretrained checkpoint:
    two gloo ranks load it through the safe loader (rank 0 reads it, the other rank receives fairseq's
    broadcast), train one model (fairseq sees world size 2), the arguments after the inputs override
    the recipe's defaults, and rank 0 writes the checkpoint and the learning curves."""
    import torch

    from mtkit.evaluation.curves import read_scalars

    save = tmp_path / "ft"
    # the tiny model's architecture (tiny_train_args), so its checkpoint is the pretrained model
    small = ["--arch", "transformer", "--encoder-layers", "2", "--decoder-layers", "2",
             "--encoder-embed-dim", "64", "--decoder-embed-dim", "64", "--encoder-ffn-embed-dim", "128",
             "--decoder-ffn-embed-dim", "128", "--encoder-attention-heads", "4", "--decoder-attention-heads", "4",
             "--encoder-normalize-before", "--decoder-normalize-before", "--layernorm-embedding",
             "--encoder-learned-pos", "--decoder-learned-pos", "--share-all-embeddings",
             "--max-source-positions", "64", "--max-target-positions", "64", "--lang-tok-style", "multilingual",
             "--max-update", "4", "--max-tokens", "500", "--update-freq", "1", "--lr", "0.001",
             "--warmup-updates", "1", "--save-dir", str(save), "--log-interval", "1", "--disable-validation"]
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", OMP_NUM_THREADS="1",
               LAUNCH="torchrun --standalone --nproc-per-node 2", PRETRAINED=str(tiny_model.checkpoint))
    res = subprocess.run(["bash", str(REPO / "recipes/mbart50/finetune.sh"), str(tiny_model.databin),
                          str(tiny_model.langs_file), *small], capture_output=True, text=True, env=env, cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-5000:]
    assert "+ torchrun --standalone --nproc-per-node 2 " in res.stderr
    assert "training on 2 devices" in out
    assert "distributed init (rank 0): env://" in out and "distributed init (rank 1): env://" in out
    assert f"loading pretrained model from {tiny_model.checkpoint}" in out
    assert "Weights only load failed" not in out and "Unsupported global" not in out
    state = torch.load(save / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    cfg = state["cfg"]
    assert state["optimizer_history"][-1]["num_updates"] == 4
    assert cfg["distributed_training"]["distributed_world_size"] == 2
    assert cfg["model"].arch == "transformer" and cfg["model"].encoder_embed_dim == 64  # args override defaults
    # MODE=m2m over the languages with data: en_XX<->de_DE, en_XX<->fr_XX
    assert sorted(cfg["task"].lang_pairs) == sorted(tiny_model.lang_pairs.split(","))
    curves = read_scalars(save / "tensorboard")  # the recipe's default --tensorboard-logdir
    assert [step for step, _ in curves["train_inner"]["loss"]] == [1, 2, 3, 4]
    # started from the trained weights: the first update's loss (recipe's label smoothing 0.2 and
    # dropout 0.3) is well below a fresh model's, which starts near log2(119 rows) = 6.9 bits
    assert curves["train_inner"]["loss"][0][1] < 6.0, curves["train_inner"]["loss"]

