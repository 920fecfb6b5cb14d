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
