"""mtkit data gettext: catalog parsing, cleaning, leakage-free split, multi-way flores, determinism."""
from __future__ import annotations

import json
import os
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from data_prep.corpora import gettext as gt
from data_prep.sources.gettext import load_catalog, parse_po
from mtkit.cli import main
from mtkit.errors import InputError

FIX = Path(__file__).parent / "fixtures" / "data" / "gettext"
CATALOGS = [str(FIX / "locale"), str(FIX / "podomain")]


def pairs(raw: Path, split: str, lang: str) -> list[tuple[str, str]]:
    a = (raw / f"{split}.en_XX-{lang}.en_XX").read_text(encoding="utf-8").splitlines()
    b = (raw / f"{split}.en_XX-{lang}.{lang}").read_text(encoding="utf-8").splitlines()
    assert len(a) == len(b), f"{split} {lang} misaligned"
    return list(zip(a, b))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def test_parse_po_flags_fuzzy_obsolete_plural_context():
    text = (FIX / "podomain" / "demo" / "si.po").read_text(encoding="utf-8")
    entries, header = parse_po(text, "si.po")
    assert "nplurals=2" in header
    by_id = {e.msgid: e for e in entries}
    assert by_id["A fuzzy entry"].fuzzy and not by_id["Copied %d files to %s"].fuzzy
    assert by_id["An obsolete entry"].obsolete
    assert by_id["%d apple"].msgid_plural == "%d apples" and by_id["%d apple"].msgstr == ["%d pomme", "%d pommes"]
    assert by_id["Recent documents list"].context == "menu"
    assert by_id["First help line.\nSecond help line."].msgstr == ["Première ligne.\nDeuxième ligne."]


def test_parse_mo_matches_po():
    mo = FIX / "locale" / "fr" / "LC_MESSAGES" / "demo.mo"
    cat = load_catalog(mo.read_bytes(), str(mo))
    assert (cat.locale, cat.domain, cat.nplurals) == ("fr", "demo", 2)
    ids = {e.msgid for e in cat.entries}
    assert "A fuzzy entry" not in ids and "An obsolete entry" not in ids  # msgfmt leaves them out
    assert "Copied %d files to %s" in ids and "" not in ids


def test_truncated_mo_is_a_clear_error():
    data = (FIX / "locale" / "fr" / "LC_MESSAGES" / "demo.mo").read_bytes()
    with pytest.raises(InputError, match="truncated"):
        load_catalog(data[: len(data) // 2], "x/fr/LC_MESSAGES/demo.mo")


def test_cleaning_rules():
    assert gt.strip_accelerators("_Open Recent") == "Open Recent"
    assert gt.strip_accelerators("&Save As") == "Save As"
    assert gt.strip_accelerators("ファイル(_F)") == "ファイル"
    assert gt.strip_accelerators("file_name and other_name") == "file_name and other_name"
    assert gt.strip_accelerators("Fish &amp; Chips") == "Fish &amp; Chips"
    assert gt.format_specifiers("%1$s of %2$d {0} %%") == ["%d", "%s", "{0}"]
    s, drops = gt.CleanSettings(), Counter()
    assert gt.clean_pair("Aa\nBb", "aa\nbb", s, drops) == [("Aa", "aa"), ("Bb", "bb")]
    assert gt.clean_pair("Aa\nBb", "aabb", s, drops) == []
    assert gt.clean_pair("%s files", "fichiers", s, drops) == []
    assert gt.clean_pair("Same", "Same", s, drops) == []
    assert drops == {"multiline_mismatch": 1, "format_mismatch": 1, "identical": 1}


def test_build_fixture_catalogs(tmp_path):
    m = gt.build(tmp_path / "o", catalogs=CATALOGS, valid_size=3, test_size=3, flores_size=3)
    raw = tmp_path / "o" / "raw"
    assert sorted(m["directions"]) == ["en_XX-de_DE", "en_XX-fr_XX", "en_XX-pt_XX", "en_XX-si_LK"]
    assert m["locales_used"]["pt_XX"] == {"pt_BR": 1}  # pt_BR preferred over pt; zh_TW / en_GB unused
    fr = {p for s in ("train", "valid", "test") for p in pairs(raw, s, "fr_XX")}
    assert ("Open Recent", "Ouvrir récent") in fr and ("Save As", "Enregistrer sous") in fr
    assert ("First help line.", "Première ligne.") in fr and ("Second help line.", "Deuxième ligne.") in fr
    assert ("%d apples", "%d pommes") in fr and ("%d apple", "%d pomme") in fr
    en = {a for a, _ in fr}
    for bad in ("A fuzzy entry", "An obsolete entry", "Untranslated entry", "OK", "Bad format %s here",
                "One line only."):
        assert bad not in en
    si = {a for s in ("train", "valid", "test") for a, _ in pairs(raw, s, "si_LK")}
    assert "A fuzzy entry" not in si and "An obsolete entry" not in si and "Open Recent" in si
    # no English sentence is held out for one language and trained on for another
    held = {a for lang in ("de_DE", "fr_XX", "pt_XX", "si_LK") for s in ("valid", "test")
            for a, _ in pairs(raw, s, lang)}
    train = {a for lang in ("de_DE", "fr_XX", "pt_XX", "si_LK") for a, _ in pairs(raw, "train", lang)}
    assert held and not held & train
    for lang in ("de_DE", "fr_XX"):
        assert len(pairs(raw, "valid", lang)) >= 3 and len(pairs(raw, "test", lang)) >= 3
    # multi-way flores: aligned, English rows translated in every language, from held-out sentences
    fl = tmp_path / "o" / "flores"
    for split, held_split in (("dev", "valid"), ("devtest", "test")):
        eng = (fl / split / f"eng_Latn.{split}").read_text(encoding="utf-8").splitlines()
        assert len(eng) == 3
        for code, lang in (("fra_Latn", "fr_XX"), ("sin_Sinh", "si_LK"), ("por_Latn", "pt_XX")):
            rows = (fl / split / f"{code}.{split}").read_text(encoding="utf-8").splitlines()
            assert len(rows) == len(eng)
            assert set(zip(eng, rows)) <= set(pairs(raw, held_split, lang))
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    c = manifest["directions"]["en_XX-fr_XX"]
    assert c["train"] + c["valid"] + c["test"] == c["after_dedup"] <= c["after_clean"]
    assert c["drop_format_mismatch"] == 1 and c["drop_multiline_mismatch"] == 1 and c["drop_identical"] == 1


def test_build_is_deterministic_and_tarball_equals_folder(tmp_path):
    gt.build(tmp_path / "a", catalogs=CATALOGS, langs=["fra_Latn", "si_LK"], valid_size=2, test_size=2)
    assert main(["data", "gettext", "--out", str(tmp_path / "b"), "--catalogs", *CATALOGS, "--langs",
                 "fr_XX,sin_Sinh", "--valid-size", "2", "--test-size", "2", "--workers", "2"]) == 0
    tar = tmp_path / "cats.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(FIX / "locale", arcname="locale")
        t.add(FIX / "podomain", arcname="podomain")
    gt.build(tmp_path / "c", catalogs=[str(tar)], langs=["fr_XX", "si_LK"], valid_size=2, test_size=2)
    a = tree_bytes(tmp_path / "a")
    assert a == tree_bytes(tmp_path / "b") == tree_bytes(tmp_path / "c")
    assert not any(n.startswith("raw/train.en_XX-de_DE") for n in a)
    # a later build with more languages, then fewer, into the same folder leaves no stale files
    gt.build(tmp_path / "a", catalogs=CATALOGS, valid_size=2, test_size=2)
    assert (tmp_path / "a" / "raw" / "train.en_XX-de_DE.de_DE").exists()
    gt.build(tmp_path / "a", catalogs=CATALOGS, langs=["fr_XX", "si_LK"], valid_size=2, test_size=2)
    assert tree_bytes(tmp_path / "a") == a


def test_truncated_tarball_is_a_clear_error(tmp_path):
    tar = tmp_path / "cats.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(FIX / "locale", arcname="locale")
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cats.tar.gz"):
        gt.build(tmp_path / "o", catalogs=[str(tar)], langs=["fr_XX"])


SYSTEM = "/usr/share/locale"


@pytest.mark.skipif(not os.path.isdir(f"{SYSTEM}/fr/LC_MESSAGES"),
                    reason="no system gettext catalogs in /usr/share/locale/fr (minimal image)")
def test_real_system_catalogs(tmp_path):
    m = gt.build(tmp_path / "o", langs=["fr_XX", "si_LK", "sw_KE"], valid_size=200, test_size=200,
                 flores_size=50)
    d = m["directions"]
    assert d["en_XX-fr_XX"]["train"] > 10000
    raw = tmp_path / "o" / "raw"
    held = {a for lang in ("fr_XX", "si_LK", "sw_KE") for s in ("valid", "test") for a, _ in pairs(raw, s, lang)}
    train = {a for lang in ("fr_XX", "si_LK", "sw_KE") for a, _ in pairs(raw, "train", lang)}
    assert not held & train
    assert m["packages"]["fr_XX"], "catalog packages are recorded"


def test_two_clean_builds_are_byte_identical_manifest_included(tmp_path):
    """Different output folders and worker counts, same catalogs: every file equal (issue 18)."""
    gt.build(tmp_path / "a", catalogs=CATALOGS, valid_size=2, test_size=2)
    stale = tmp_path / "b" / "raw" / ".train.en_XX-fr_XX.fr_XX.x1y2.tmp"  # what a killed run leaves
    stale.parent.mkdir(parents=True)
    stale.write_text("half a file")
    assert main(["data", "gettext", "--out", str(tmp_path / "b"), "--catalogs", *CATALOGS, "--valid-size", "2",
                 "--test-size", "2", "--workers", "2"]) == 0
    a = {str(p.relative_to(tmp_path / "a")): p.read_bytes() for p in sorted((tmp_path / "a").rglob("*")) if p.is_file()}
    b = {str(p.relative_to(tmp_path / "b")): p.read_bytes() for p in sorted((tmp_path / "b").rglob("*")) if p.is_file()}
    assert a == b and "manifest.json" in a
