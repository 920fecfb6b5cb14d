"""mtkit check (mtkit.checks) and the early failures of recipes/mbart50 (before fairseq's size mismatch)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mtkit import checkpoint as ckpt_io
from mtkit import checks as rc
from mtkit.errors import InputError

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LANGS = ["ar_AR", "cs_CZ", "de_DE", "en_XX"]


def _setup(tmp: Path, n_pieces: int = 20, rows: int | None = None, dict_extra: list[str] = ()) -> dict[str, Path]:
    rows = 4 + n_pieces + len(LANGS) + 1 if rows is None else rows
    emb = torch.zeros(rows, 4)
    ckpt_io.save({"model": {"encoder.embed_tokens.weight": emb, "decoder.embed_tokens.weight": emb}}, tmp / "model.pt")
    (tmp / "dict.txt").write_text("".join(f"p{i} 1\n" for i in range(n_pieces)) + "".join(f"{t} 1\n" for t in dict_extra))
    (tmp / "langs.txt").write_text("\n".join(LANGS) + "\n")
    return {"ckpt": tmp / "model.pt", "dict": tmp / "dict.txt", "langs": tmp / "langs.txt"}


def test_vocab_ok_mbart_layout(tmp_path):
    p = _setup(tmp_path)
    msg = rc.check_vocab(p["ckpt"], p["dict"], p["langs"], expect_mask="yes")
    assert "20 pieces + 4 language tokens + <mask>" in msg


def test_vocab_released_mbart50_numbers(tmp_path):
    """The released mBART-50 layout: 250k-piece dict.txt (250001 types with specials), 52 languages,
    <mask> last -> 250054 rows. Checked on the row arithmetic without a 2 GB file."""
    from mtkit.extend_langs import infer_layout
    from mtkit.langs import ML50_LANGS

    symbols = [f"p{i}" for i in range(250001 - 4)]
    lay = infer_layout(250054, symbols, list(ML50_LANGS))
    assert lay.has_mask and lay.size == 250054 and len(ML50_LANGS) == 52
    with pytest.raises(InputError, match="shorter"):  # 25 mBART-25 languages given for an mBART-50 model
        infer_layout(250054, symbols, list(ML50_LANGS[:25]))


def test_vocab_dict_with_lang_tokens_issue_3474(tmp_path):
    p = _setup(tmp_path, dict_extra=["[ar_AR]", "[cs_CZ]"])
    with pytest.raises(InputError, match="already contains language/mask tokens"):
        rc.check_vocab(p["ckpt"], p["dict"], p["langs"])


def test_vocab_model_without_lang_tokens(tmp_path):
    p = _setup(tmp_path, rows=4 + 20 + 1)
    with pytest.raises(InputError, match="NO language tokens"):
        rc.check_vocab(p["ckpt"], p["dict"], p["langs"])


def test_vocab_translation_model_vs_mbart_style(tmp_path):
    p = _setup(tmp_path, rows=4 + 20 + len(LANGS))  # __xx__ tokens, no <mask>
    with pytest.raises(InputError, match="lang-tok-style multilingual"):
        rc.check_vocab(p["ckpt"], p["dict"], p["langs"], expect_mask="yes")


def test_cli_exit_codes(tmp_path):
    p = _setup(tmp_path, rows=100)
    res = subprocess.run([sys.executable, "-m", "mtkit.cli", "check", "vocab", "--checkpoint", str(p["ckpt"]),
                          "--dict", str(p["dict"]), "--langs", str(p["langs"])], capture_output=True, text=True)
    assert res.returncode == 2 and "mtkit check: error:" in res.stderr and "Traceback" not in res.stderr


def test_databin_checks(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    for lg in ("en_XX", "de_DE"):
        (d / f"dict.{lg}.txt").write_text("a 1\n")
        (d / f"train.en_XX-de_DE.{lg}.idx").write_text("")
    (tmp_path / "langs.txt").write_text("en_XX\nde_DE\n")
    assert rc.check_databin(d, tmp_path / "langs.txt", "en_XX-de_DE,de_DE-en_XX").startswith("ok")
    with pytest.raises(InputError, match="not in the language list"):
        rc.check_databin(d, tmp_path / "langs.txt", "en_XX-fr_XX")
    (d / "dict.de_DE.txt").write_text("b 1\n")
    with pytest.raises(InputError, match="joined dictionary"):
        rc.check_databin(d, tmp_path / "langs.txt", "en_XX-de_DE")


@pytest.mark.slow
def test_finetune_recipe_fails_before_fairseq(tmp_path):
    """finetune.sh with a dictionary that already lists language tokens stops in the checker."""
    p = _setup(tmp_path, dict_extra=["[ar_AR]"])
    d = tmp_path / "bin"
    d.mkdir()
    for lg in ("en_XX", "de_DE"):
        (d / f"dict.{lg}.txt").write_text(p["dict"].read_text())
        (d / f"train.en_XX-de_DE.{lg}.idx").write_text("")
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", PRETRAINED=str(p["ckpt"]))
    recipe = str(REPO / "recipes/mbart50/finetune.sh")
    res = subprocess.run(["bash", recipe, str(d), str(p["langs"])], env=env, capture_output=True, text=True)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "already contains language/mask tokens" in res.stderr
    assert "fairseq-train" not in res.stderr  # stopped before the training command was printed
    res = subprocess.run(["bash", recipe, str(tmp_path / "nope"), str(p["langs"])], env=env,
                         capture_output=True, text=True)
    assert res.returncode == 2 and "DATA:" in res.stderr and "is not a folder" in res.stderr


def test_ml50_table_layout_and_published_averages_only():
    sys.path.insert(0, str(REPO / "benchmarks/ML50"))
    import table

    scores = {"directions": {"fr_XX-en_XX": {"bleu": 30.0, "chrf++": 55.0}, "en_XX-fr_XX": {"bleu": 28.0, "chrf++": 53.0},
                             "si_LK-en_XX": {"bleu": 10.0, "chrf++": 30.0}},
              "resource_classes": {"fr_XX": "high", "si_LK": "low"}, "training_lines": {"fr_XX": 9, "si_LK": 1}}
    base = {"directions": {"si_LK-en_XX": {"bleu": 4.0, "chrf++": 20.0}}}
    text = table.build_table(scores, "m", base)
    rows = [ln for ln in text.splitlines() if ln.startswith("| high |") or ln.startswith("| low |")]
    assert rows[0].startswith("| high | fr_XX | 30.0 | 55.0 | 28.0 | 53.0 |")
    assert "| low | si_LK | 10.0 | 30.0 | – | – | +6.0 | – |" in text
    assert "+9.3 BLEU" in text and "+1.0 BLEU" in text and "+6.0 BLEU on average over 1 shared" in text


@pytest.mark.slow
def test_finetune_from_a_long_trained_checkpoint_gets_its_own_stop_time(tiny_model, tmp_path):
    """fairseq restores previous_training_time from the checkpoint a run starts from; with
    --finetune-from-model (reset meters) mtkit's patch starts the clock at zero, so a small
    --stop-time-hours budget is not already spent before the first update."""
    import torch

    from mtkit import checkpoint

    state = checkpoint.load(tiny_model.checkpoint)
    state["extra_state"]["previous_training_time"] = 10 * 3600.0  # "trained for ten hours"
    init = tmp_path / "init.pt"
    torch.save(state, init)
    save_dir = tmp_path / "ft"
    cmd = [str(BIN / "fairseq-train"), *tiny_model.train_args(), "--finetune-from-model", str(init),
           "--stop-time-hours", "0.5", "--max-update", "6", "--save-dir", str(save_dir),
           "--disable-validation", "--log-interval", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stderr[-3000:]
    last = checkpoint.load(save_dir / "checkpoint_last.pt")
    assert last["optimizer_history"][-1]["num_updates"] == 6
    assert last["extra_state"]["previous_training_time"] < 3600.0
