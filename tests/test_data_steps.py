"""Streaming steps: dedup, overlap removal (fairseq semantics), filters, bad input, re-run, SIGKILL resume."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.binarize import binarize
from data_prep.steps.dedup import dedup_pairs
from data_prep.steps.filters import FilterSettings, filter_pairs
from data_prep.steps.pipeline import run_steps
from mtkit.errors import InputError
from mtkit.io import read_pairs


def write(path: Path, lines: list[str] | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lines if isinstance(lines, bytes) else "".join(x + "\n" for x in lines).encode())


def put(folder: Path, split: str, src: str, tgt: str, rows: list[tuple[str, str]]) -> None:
    write(folder / f"{split}.{src}-{tgt}.{src}", [a for a, _ in rows])
    write(folder / f"{split}.{src}-{tgt}.{tgt}", [b for _, b in rows])


def rows(folder: Path, split: str, src: str, tgt: str) -> list[tuple[str, str]]:
    return list(read_pairs(folder / f"{split}.{src}-{tgt}.{src}", folder / f"{split}.{src}-{tgt}.{tgt}"))


@pytest.mark.parametrize("mem", [0, 64])  # 0: one pair per bucket (many passes), 64: one bucket
def test_dedup_matches_naive(tmp_path, mem):
    data = [(f"s{i % 7}", f"t{i % 5}") for i in range(60)] + [(" s1", "t1 ")]
    put(tmp_path, "train", "en_XX", "fr_XX", data)
    c = dedup_pairs(tmp_path / "train.en_XX-fr_XX.en_XX", tmp_path / "train.en_XX-fr_XX.fr_XX",
                    tmp_path / "o.en", tmp_path / "o.fr", max_memory_mb=mem)
    seen, naive = set(), []
    for a, b in data:
        if (a.strip(), b.strip()) not in seen:
            seen.add((a.strip(), b.strip()))
            naive.append((a, b))
    assert list(read_pairs(tmp_path / "o.en", tmp_path / "o.fr")) == naive
    assert c["out"] == len(naive) and c["drop_duplicate"] == len(data) - len(naive)


def test_pipeline_overlap_filters_bad_input(tmp_path):
    raw = tmp_path / "raw"
    long_line = "x" * 100_000
    put(raw, "train", "en_XX", "fr_XX", [
        ("keep me", "garde moi"), ("keep me", "garde moi"),  # duplicate
        ("held out sentence", "phrase a"),  # source is in de valid
        ("other", "tgt in fr test"),  # target is in fr test
        ("", "vide"), (long_line, "long"),  # empty, too long
        ("a much much longer sentence here", "a"),  # ratio
        ("fine one", "bien un"),
    ])
    put(raw, "test", "en_XX", "fr_XX", [("fr test src", "tgt in fr test")])
    put(raw, "valid", "en_XX", "de_DE", [("held out sentence", "ausgehalten")])
    # de train: BOM, CRLF, invalid UTF-8 and NUL lines
    write(raw / "train.en_XX-de_DE.en_XX", b"\xef\xbb\xbfhello there\r\nbad \xff byte\nnul\x00here\ngood line\n")
    write(raw / "train.en_XX-de_DE.de_DE", b"hallo da\r\nschlecht\nnul\ngute zeile\n")
    m = run_steps(raw, tmp_path / "w")
    clean = tmp_path / "w" / "clean"
    assert rows(clean, "train", "en_XX", "fr_XX") == [("keep me", "garde moi"), ("fine one", "bien un")]
    assert rows(clean, "train", "en_XX", "de_DE") == [("hello there", "hallo da"), ("good line", "gute zeile")]
    assert rows(clean, "test", "en_XX", "fr_XX") == [("fr test src", "tgt in fr test")]
    fr = m["steps"]["clean"]["en_XX-fr_XX"]["train"]
    assert (fr["drop_overlap"], fr["drop_empty"], fr["drop_length"], fr["drop_ratio"]) == (2, 1, 1, 1)
    assert m["steps"]["dedup"]["en_XX-fr_XX"]["train"]["drop_duplicate"] == 1
    assert m["steps"]["dedup"]["en_XX-de_DE"]["train"]["drop_bad_line"] == 2
    # re-run: cached, same counts; changing a held-out file re-runs clean for every direction
    m2 = run_steps(raw, tmp_path / "w")
    assert m2["steps"] == m["steps"]
    put(raw, "valid", "en_XX", "de_DE", [("fine one", "ausgehalten")])
    m3 = run_steps(raw, tmp_path / "w")
    assert m3["steps"]["clean"]["en_XX-fr_XX"]["train"]["drop_overlap"] == 2
    assert ("fine one", "bien un") not in rows(clean, "train", "en_XX", "fr_XX")


def test_mismatched_and_strict_errors(tmp_path):
    put(tmp_path, "train", "en_XX", "fr_XX", [("a", "b")])
    write(tmp_path / "train.en_XX-fr_XX.fr_XX", ["b", "extra"])
    with pytest.raises(InputError, match=r"train.en_XX-fr_XX.en_XX has 1 lines"):
        filter_pairs(tmp_path / "train.en_XX-fr_XX.en_XX", tmp_path / "train.en_XX-fr_XX.fr_XX",
                     tmp_path / "o1", tmp_path / "o2", "en_XX", "fr_XX", FilterSettings())
    assert not (tmp_path / "o1").exists() and not list(tmp_path.glob(".o1*"))  # nothing half-written
    # binarize is strict: a bad byte is an error naming file and line
    raw = tmp_path / "raw"
    put(raw, "train", "en_XX", "fr_XX", [("good", "bon")] * 3)
    write(raw / "train.en_XX-fr_XX.fr_XX", b"bon\nb\xffad\nbon\n")
    with pytest.raises(InputError, match=r"train.en_XX-fr_XX.fr_XX:2: invalid UTF-8"):
        binarize(raw, tmp_path / "b", spm_vocab_size=20)


def test_lid_filter_with_a_real_model(tmp_path):
    """pycld2's model ships inside its wheel: the filter runs offline, for real."""
    rows = [
        ("The file could not be saved because the disk is full.",
         "Le fichier n'a pas pu être enregistré parce que le disque est plein."),
        ("Do you want to close all windows and quit the application?",  # French side is German
         "Möchten Sie alle Fenster schließen und die Anwendung beenden?"),
        ("Les paramètres de confidentialité ont été mis à jour avec succès.",  # English side is French
         "Les paramètres de confidentialité ont été mis à jour avec succès !"),
        ("OK", "OK"),  # too short to tell: kept
        ("Search for files and folders on this computer by name or content.",
         "Rechercher des fichiers et des dossiers sur cet ordinateur par nom ou par contenu."),
    ]
    put(tmp_path, "train", "en_XX", "fr_XX", rows)
    c = filter_pairs(tmp_path / "train.en_XX-fr_XX.en_XX", tmp_path / "train.en_XX-fr_XX.fr_XX",
                     tmp_path / "o.en", tmp_path / "o.fr", "en_XX", "fr_XX", FilterSettings(lid="pycld2"))
    assert list(read_pairs(tmp_path / "o.en", tmp_path / "o.fr")) == [rows[0], rows[3], rows[4]]
    assert c["drop_lid"] == 2 and c["out"] == 3


def test_lid_engine_errors_are_clear(tmp_path):
    put(tmp_path, "train", "en_XX", "fr_XX", [("hello", "bonjour")])
    args = (tmp_path / "train.en_XX-fr_XX.en_XX", tmp_path / "train.en_XX-fr_XX.fr_XX", tmp_path / "o1",
            tmp_path / "o2", "en_XX", "fr_XX")
    with pytest.raises(InputError, match="choose pycld2"):
        filter_pairs(*args, FilterSettings(lid="cld9"))
    with pytest.raises(InputError, match="fasttext"):
        filter_pairs(*args, FilterSettings(lid="fasttext:/nope.bin"))
    assert not (tmp_path / "o1").exists()


DRIVER = """
import os, signal, sys
from data_prep.steps import pipeline
step = sys.argv[3]
if step != "none":  # a real SIGKILL at a known point: inside the step, after its first direction is written
    name = {"dedup": "dedup_pairs", "clean": "filter_pairs"}[step]
    orig = getattr(pipeline, name)
    def killing(*args, **kw):
        orig(*args, **kw)
        os.kill(os.getpid(), signal.SIGKILL)
    setattr(pipeline, name, killing)
pipeline.run_steps(sys.argv[1], sys.argv[2])
"""


@pytest.mark.slow
def test_sigkill_then_rerun_is_byte_identical(tmp_path):
    raw = tmp_path / "raw"
    n = 30_000
    for lang in ("fr_XX", "de_DE"):
        put(raw, "train", "en_XX", lang, [(f"sentence {i % 25_000} en", f"{lang} {i % 24_000}") for i in range(n)])
        put(raw, "valid", "en_XX", lang, [(f"sentence {i} en", f"v {i}") for i in range(0, 2000, 7)])
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent))
    ref = tmp_path / "ref"
    subprocess.run([sys.executable, "-c", DRIVER, str(raw), str(ref), "none"], check=True, env=env)
    work = tmp_path / "work"
    for step in ("dedup", "clean"):
        p = subprocess.run([sys.executable, "-c", DRIVER, str(raw), str(work), step], env=env)
        assert p.returncode == -signal.SIGKILL
        assert not (work / "manifest.steps.json").exists()
    subprocess.run([sys.executable, "-c", DRIVER, str(raw), str(work), "none"], check=True, env=env)
    for step in ("dedup", "clean"):
        names = sorted(p.name for p in (ref / step).iterdir() if not p.name.startswith("."))
        assert names == sorted(p.name for p in (work / step).iterdir() if not p.name.startswith("."))
        for name in names:
            assert (ref / step / name).read_bytes() == (work / step / name).read_bytes(), name
        assert not list((work / step).glob(".*.tmp"))
