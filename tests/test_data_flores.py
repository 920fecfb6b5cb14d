"""mtkit data flores: read a Flores-200 folder into valid/test files; write Flores-style folders."""
from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.corpora import gettext as gt
from data_prep.corpora.flores import read_flores, write_from_files, write_from_raw
from mtkit.cli import main
from mtkit.errors import InputError

FIX = Path(__file__).parent / "fixtures" / "data"


def lines(p: Path) -> list[str]:
    return p.read_text(encoding="utf-8").splitlines()


def test_read_flores_directions(tmp_path):
    rc = main(["data", "flores", "read", "--flores", str(FIX / "sources" / "flores200"), "--out", str(tmp_path),
               "--directions", "en_XX-fr_XX,sin_Sinh-eng_Latn"])
    assert rc == 0
    assert lines(tmp_path / "valid.en_XX-fr_XX.fr_XX") == lines(FIX / "sources/flores200/dev/fra_Latn.dev")
    assert lines(tmp_path / "test.si_LK-en_XX.si_LK") == lines(FIX / "sources/flores200/devtest/sin_Sinh.devtest")
    assert len(lines(tmp_path / "test.si_LK-en_XX.en_XX")) == 5
    read_flores(FIX / "sources" / "flores200", tmp_path / "f", [("eng_Latn", "fra_Latn")], style="flores")
    assert (tmp_path / "f" / "valid.eng_Latn-fra_Latn.fra_Latn").exists()
    with pytest.raises(InputError, match="deu_Latn.dev"):
        read_flores(FIX / "sources" / "flores200", tmp_path / "g", [("en_XX", "de_DE")])


def test_write_from_raw_roundtrip(tmp_path):
    gt.build(tmp_path / "gt", catalogs=[str(FIX / "gettext" / "locale"), str(FIX / "gettext" / "podomain")],
             valid_size=3, test_size=3, flores_size=3)
    res = write_from_raw(tmp_path / "gt" / "raw", tmp_path / "fl")
    assert res["dev"] >= 3 and res["devtest"] >= 3
    eng = lines(tmp_path / "fl" / "dev" / "eng_Latn.dev")
    for code in ("fra_Latn", "sin_Sinh", "deu_Latn", "por_Latn"):
        assert len(lines(tmp_path / "fl" / "dev" / f"{code}.dev")) == len(eng)
    # reading it back gives aligned valid files that are a subset of the raw valid pairs
    read_flores(tmp_path / "fl", tmp_path / "back", [("en_XX", "fr_XX")])
    back = set(zip(lines(tmp_path / "back" / "valid.en_XX-fr_XX.en_XX"), lines(tmp_path / "back" / "valid.en_XX-fr_XX.fr_XX")))
    raw = set(zip(lines(tmp_path / "gt" / "raw" / "valid.en_XX-fr_XX.en_XX"),
                  lines(tmp_path / "gt" / "raw" / "valid.en_XX-fr_XX.fr_XX")))
    assert back and back <= raw


def test_write_from_files_checks_alignment(tmp_path):
    (tmp_path / "a").write_text("x\ny\n")
    (tmp_path / "b").write_text("x\n")
    with pytest.raises(InputError, match="same number of lines"):
        write_from_files({"eng_Latn": str(tmp_path / "a"), "fr_XX": str(tmp_path / "b")}, tmp_path / "o", "dev")
    (tmp_path / "b").write_text("u\nv\n")
    assert write_from_files({"eng_Latn": str(tmp_path / "a"), "fr_XX": str(tmp_path / "b")}, tmp_path / "o", "dev") == 2
    assert lines(tmp_path / "o" / "dev" / "fra_Latn.dev") == ["u", "v"]
