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


# ---- the line contract through the command line ------------------------------------------------

def _cli(args: list[str], stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "mtkit"), "translate", *args], input=stdin, capture_output=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1", **env))


def _out_lines(res: subprocess.CompletedProcess) -> list[str]:
    """stdout split as `wc -l` counts lines (not str.splitlines); it must end with a newline."""
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    text = res.stdout.decode("utf-8")
    assert text.endswith("\n")
    return text.split("\n")[:-1]


def _tricky_files(tiny_model, folder: Path) -> tuple[list[Path], list[str]]:
    """Two input files with CRLF, a lone CR, U+0085, U+2028, empty and blank lines, and a last line
    without a newline; the lines (as mtkit reads them) of both, in order."""
    from mtkit.translate import split_lines

    s, _ = _test_pairs(tiny_model, "de_DE", 12)
    one = (f"{s[0]}\r\n\r\n   \n{s[1]}\r{s[2]}\n{s[3]}\x85{s[4]}\n{s[5]}\u2028{s[6]}\n\u3000\n\u2028\n{s[7]}")
    two = f"{s[8]}\n\n{s[9]} {s[10]}\r\n{s[11]}\n"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "one.txt", folder / "two.txt"]
    paths[0].write_bytes(one.encode("utf-8"))
    paths[1].write_bytes(two.encode("utf-8"))
    lines = split_lines(one) + split_lines(two)
    assert len(lines) == 13 and lines[3] == f"{s[1]}\r{s[2]}"
    return paths, lines


def test_cli_keeps_every_line_of_files(en_de, tiny_model, tmp_path):
    """Files, several of them, CRLF, a lone CR, U+0085, U+2028, empty and blank lines: one output
    line per input line, each the translation of that line alone."""
    paths, lines = _tricky_files(tiny_model, tmp_path)
    args = ["-m", str(tiny_model.root), "--src-lang", "en_XX", "--tgt-lang", "de_DE"]
    out = _out_lines(_cli(args + [str(p) for p in paths]))
    assert len(out) == len(lines)
    blank = {i for i, line in enumerate(lines) if not line.strip()}
    assert blank == {1, 2, 6, 7, 10}
    for i, line in enumerate(lines):
        assert out[i] == ("" if i in blank else en_de.translate_lines([line])[0]), (i, line)
        assert (out[i] == "") == (i in blank)
    # the same lines from stdin give the same output
    stdin = b"".join(p.read_bytes() for p in paths[:1]) + b"\n" + paths[1].read_bytes()
    assert _out_lines(_cli(args, stdin=stdin)) == out
    # --nbest 3: three tab-separated hypotheses on each line, the first is the 1-best
    nb = _out_lines(_cli(args + ["--nbest", "3", str(paths[0]), str(paths[1])]))
    assert len(nb) == len(lines)
    assert all(len(x.split("\t")) == 3 for x in nb)
    assert [x.split("\t")[0] for x in nb] == out
    assert all(x == "\t\t" for i, x in enumerate(nb) if i in blank)


def test_cli_ct2_keeps_every_line(tiny_model, tmp_path):
    from mtkit.export.ct2 import export_ct2
    from mtkit.model_folder import find_files

    ct2 = export_ct2(find_files(tiny_model.root), tmp_path / "ct2")
    paths, lines = _tricky_files(tiny_model, tmp_path / "in")
    res = _cli(["-m", str(ct2), "--engine", "ct2", "--src-lang", "en_XX", "--tgt-lang", "de_DE",
                *map(str, paths)])
    out = _out_lines(res)
    t = Translator.from_folder(ct2, "en_XX", "de_DE", engine="ct2")
    assert out == [t.translate_lines([line])[0] for line in lines]
    assert [i for i, o in enumerate(out) if not o] == [1, 2, 6, 7, 10]


def test_cli_clear_errors_before_any_work(tiny_model, tmp_path):
    args = ["-m", str(tiny_model.root), "--src-lang", "en_XX", "--tgt-lang", "de_DE"]
    res = _cli(args + ["--nbest", "0"], stdin=b"the cat\n")
    assert res.returncode == 2 and b"--nbest must be at least 1" in res.stderr and not res.stdout
    assert b"Traceback" not in res.stderr
    res = _cli(args + ["--ct2-ranking", "ct2"], stdin=b"the cat\n")
    assert res.returncode == 2 and b"--ct2-ranking is for --engine ct2" in res.stderr and not res.stdout
    res = _cli(args, stdin=b"the cat\n", PYTHONIOENCODING="latin-1")
    assert res.returncode == 2 and not res.stdout
    assert b"standard output uses the iso8859-1 encoding" in res.stderr and b"--output" in res.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the cat\nal\xe9\n")
    res = _cli(args + [str(bad)])
    assert res.returncode == 2 and b"bad.txt:2: invalid UTF-8" in res.stderr


# ---- parity with fairseq's own generation --------------------------------------------------------

def _fairseq_generate(tiny_model, checkpoint: Path, src: str, tgt: str, extra: list[str]) -> list[str]:
    from mtkit.plugin import user_dir

    cmd = [str(BIN / "fairseq-generate"), str(tiny_model.databin), "--user-dir", user_dir(),
           "--path", str(checkpoint), "--task", "translation_multi_simple_epoch",
           "--lang-dict", str(tiny_model.langs_file), "--lang-pairs", tiny_model.lang_pairs,
           "--source-lang", src, "--target-lang", tgt, "--encoder-langtok", "src", "--decoder-langtok",
           "--gen-subset", "test", "--beam", "5", "--post-process", "sentencepiece", "--cpu",
           # fairseq's default (8) silently drops a last batch of another size (fairseq issue #5036)
           "--required-batch-size-multiple", "1", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stderr[-3000:]
    hyps: dict[int, str] = {}
    for line in res.stdout.splitlines():
        if line.startswith("H-"):
            head, _score, *text = line.split("\t")
            hyps[int(head[2:])] = text[0] if text else ""
    assert sorted(hyps) == list(range(40)), "fairseq-generate left out sentences"
    return [hyps[i] for i in range(40)]


@pytest.mark.parametrize("src,tgt,pair", [("en_XX", "de_DE", "en_XX-de_DE"), ("fr_XX", "en_XX", "en_XX-fr_XX")])
def test_fairseq_engine_gives_fairseq_generates_top1(tiny_model, tmp_path, src, tgt, pair):
    """`mtkit translate` (fairseq engine) against fairseq-generate on the binarised test split of the
    same checkpoint: the same best hypothesis on every line, with fairseq's default batching and
    with one sentence per batch on both sides (batch composition can change the last bits of the
    scores, see benchmarks/translate_speed/README.md)."""
    from mtkit.model_folder import find_files

    ckpt = find_files(tiny_model.root).checkpoint
    source = tmp_path / "src.txt"
    source.write_text((tiny_model.raw / f"test.{pair}.{src}").read_text(encoding="utf-8"), encoding="utf-8")
    args = ["-m", str(tiny_model.root), "--src-lang", src, "--tgt-lang", tgt, "--beam", "5", str(source)]
    ours = _out_lines(_cli(args))
    theirs = _fairseq_generate(tiny_model, ckpt, src, tgt, ["--max-tokens", "4000"])
    assert len(ours) == len(theirs) == 40
    assert ours == theirs
    one = _out_lines(_cli(args + ["--batch-size", "1"]))
    assert one == _fairseq_generate(tiny_model, ckpt, src, tgt, ["--batch-size", "1"]) == theirs
