"""mtkit translate on the session's tiny model: line contract, languages, errors, safety."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import malicious_model_folder

from mtkit.errors import InputError
from mtkit.langs import UnknownLanguageError
from mtkit.translate import Options, Translator

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def en_de(tiny_model):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return Translator.from_folder(tiny_model.root, "en_XX", "de_DE", options=Options(beam=5))


def _test_pairs(tiny_model, tgt: str, n: int = 40) -> tuple[list[str], list[str]]:
    src = (tiny_model.raw / f"test.en_XX-{tgt}.en_XX").read_text(encoding="utf-8").splitlines()[:n]
    ref = (tiny_model.raw / f"test.en_XX-{tgt}.{tgt}").read_text(encoding="utf-8").splitlines()[:n]
    return src, ref


def test_lines_kept_in_order_with_empty_and_overlong(en_de, tiny_model, caplog):
    from mtkit.testing import english_sentences

    src, _ = _test_pairs(tiny_model, "de_DE", 6)
    overlong = " ".join(english_sentences(40, seed=7))  # far beyond 64 positions
    lines = [src[0], "", src[1], overlong, "   ", src[2], src[3], ""]
    with caplog.at_level(logging.WARNING):
        out = en_de.translate_lines(lines)
    assert len(out) == len(lines)
    assert out[1] == "" and out[4] == "" and out[7] == ""
    assert out[3].strip(), "over-long line must be translated (truncated), not dropped"
    assert any("truncated" in r.getMessage() and "line 4" in r.getMessage() for r in caplog.records)
    # order restored: each line equals its translation on its own
    for i in (0, 2, 5, 6):
        assert out[i] == en_de.translate_lines([lines[i]])[0]
        assert out[i].strip()


def test_translation_learns_the_cipher(en_de, tiny_model):
    from mtkit.testing import translate_words

    src, _ = _test_pairs(tiny_model, "de_DE", 40)
    out = en_de.translate_lines(src)
    exact = sum(o == translate_words(s, "de_DE") for o, s in zip(out, src))
    word_hits = sum(len(set(o.split()) & set(translate_words(s, "de_DE").split())) for o, s in zip(out, src))
    words = sum(len(s.split()) for s in src)
    assert word_hits / words > 0.5, (exact, word_hits, words, out[:3])


def test_flores_codes_and_direction_switch(en_de, tiny_model):
    en_de.set_direction("eng_Latn", "fra_Latn")
    try:
        assert (en_de.src, en_de.tgt) == ("en_XX", "fr_XX")
        src, _ = _test_pairs(tiny_model, "fr_XX", 3)
        out = en_de.translate_lines(src)
        assert len(out) == 3 and all(o.strip() for o in out)
    finally:
        en_de.set_direction("en_XX", "de_DE")


def test_unknown_language_lists_model_languages(en_de):
    with pytest.raises(UnknownLanguageError) as e:
        en_de.set_direction("en_XX", "ja_XX")
    assert "en_XX de_DE fr_XX" in str(e.value)
    with pytest.raises(UnknownLanguageError):
        en_de.set_direction("xx_YY", "de_DE")
    en_de.set_direction("en_XX", "de_DE")


def test_untrained_direction_warns(en_de, caplog):
    with caplog.at_level(logging.WARNING):
        en_de.set_direction("de_DE", "fr_XX")
    en_de.set_direction("en_XX", "de_DE")
    assert any("was not among the training directions" in r.getMessage() for r in caplog.records)


def test_missing_piece_is_named(tiny_model, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(tiny_model.checkpoint, folder / "checkpoint.pt")
    with pytest.raises(InputError, match="no dictionary"):
        Translator.from_folder(folder, "en_XX", "de_DE")
    with pytest.raises(InputError, match="no checkpoint"):
        Translator.from_folder(tmp_path, "en_XX", "de_DE")


def test_malicious_checkpoint_refused(tiny_model, tmp_path):
    from mtkit.checkpoint import UnsafeCheckpointError

    marker = tmp_path / "pwned"
    folder = malicious_model_folder(tiny_model, tmp_path / "evil", marker)
    with pytest.raises(UnsafeCheckpointError):
        Translator.from_folder(folder, "en_XX", "de_DE")
    assert not marker.exists()
    res = subprocess.run([str(BIN / "mtkit"), "translate", "-m", str(folder), "--src-lang", "en_XX",
                          "--tgt-lang", "de_DE"], input="the cat\n", capture_output=True, text=True)
    assert res.returncode == 2 and "refusing to load checkpoint" in res.stderr
    assert not marker.exists()


def test_cli_stdin_to_stdout(tiny_model):
    src, _ = _test_pairs(tiny_model, "de_DE", 4)
    # \x0c and U+2028 are line breaks for str.splitlines but not for `wc -l`: they must not split lines
    text = "\n".join([src[0], "", src[1] + "\x0c", src[2] + "\u2028"]) + "\n"
    res = subprocess.run([str(BIN / "mtkit"), "translate", "-m", str(tiny_model.root), "--src-lang", "eng_Latn",
                          "--tgt-lang", "de_DE", "--beam", "2"], input=text, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stderr
    out = res.stdout.split("\n")
    assert out[-1] == "" and len(out) - 1 == 4
    assert out[1] == "" and all(out[i].strip() for i in (0, 2, 3))


def test_moe_checkpoint_all_experts_in_one_process(tiny_model, tmp_path):
    """A few-update MoE model (mtkit's transformer_moe, NLLB shared/rank layout) translates with the
    fairseq engine (line contract kept); the ct2 export refuses it with a reason."""
    pytest.importorskip("mtkit.moe_checkpoint")
    args = tiny_model.train_args()
    args[args.index("--arch") + 1] = "transformer_moe"
    args[args.index("--criterion") + 1] = "moe_label_smoothed_cross_entropy"
    folder = tmp_path / "moe"
    args += ["--moe-expert-count", "2", "--moe-freq", "2", "--max-update", "4", "--save-dir",
             str(folder / "checkpoints")]
    res = subprocess.run([str(BIN / "fairseq-train"), *args], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert (folder / "checkpoints" / "checkpoint_last-shared.pt").exists()
    for name in ("dict.txt", "spm.model", "langs.txt"):
        shutil.copy(tiny_model.root / name, folder / name)
    t = Translator.from_folder(folder, "en_XX", "de_DE", options=Options(beam=2, max_len=10))
    assert any(".moe_layer.experts.1." in k for k in t.engine.model.state_dict())
    out = t.translate_lines(["the cat", "", "a dog sees the tree"])
    assert len(out) == 3 and out[1] == ""
    res = subprocess.run([str(BIN / "mtkit"), "export", "ct2", "-m", str(folder), "--out", str(tmp_path / "c")],
                         capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 2 and "mixture-of-experts" in res.stderr


def test_nbest_and_checkpoint_file(en_de, tiny_model):
    src, _ = _test_pairs(tiny_model, "de_DE", 3)
    best = en_de.translate_lines(src)
    old = en_de.options
    en_de.options = Options(beam=5, nbest=3)
    try:
        nb = en_de.translate_lines(src + [""], nbest=True)
    finally:
        en_de.options = old
    assert [len(x) for x in nb] == [3, 3, 3, 3] and nb[3] == ["", "", ""]
    assert [x[0] for x in nb[:3]] == best
    assert all(len(set(x)) == 3 for x in nb[:3])
    # a checkpoint file instead of a folder: the rest is found next to it and in its parent
    from mtkit.model_folder import find_files

    ckpt = find_files(tiny_model.root).checkpoint  # checkpoint_best.pt, as the folder resolves it
    t = Translator.from_folder(ckpt, "en_XX", "de_DE", options=Options(beam=5))
    assert t.translate_lines(src) == best
