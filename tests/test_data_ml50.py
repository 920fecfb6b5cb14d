"""`mtkit data ml50` end to end from a fixture mirror (xh_ZA, si_LK, bn_IN, kk_KZ + reported gaps)."""
from __future__ import annotations

import gzip
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from data_prep import ml50
from data_prep.download import mirror_path
from data_prep.ml50_sources import PLANS
from mtkit.cli import main

FIX = Path(__file__).parent / "fixtures" / "data" / "sources"
LANGS = ["xh_ZA", "si_LK", "bn_IN", "kk_KZ"]


def make_mirror(root: Path) -> Path:
    """Lay the fixtures out as DIR/<host>/<path of URL>, in the archive formats of the real sources."""
    def put(url: str) -> Path:
        p = mirror_path(root, url)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    tmx_gz = gzip.compress((FIX / "opus" / "en-xh.tmx").read_bytes())
    for s in PLANS["xh_ZA"].train:  # eight OPUS corpora: same fixture, so dedup has work to do
        put(s.url).write_bytes(tmx_gz)
    for s in PLANS["si_LK"].train:
        with zipfile.ZipFile(put(s.url), "w") as z:
            if "GNOME" in s.url:
                z.write(FIX / "opus" / "GNOME.en-si.en", s.args["en"])
                z.write(FIX / "opus" / "GNOME.en-si.si", s.args["xx"])
            else:
                corpus = s.args["en"].split(".")[0]
                z.writestr(s.args["en"], f"{corpus} English line\n")
                z.writestr(s.args["xx"], f"{corpus} සිංහල\n")
    with tarfile.open(put(PLANS["si_LK"].valid[0].url), "w:gz") as t:
        t.add(FIX / "flores_v1" / "wikipedia_en_ne_si_test_sets", arcname="wikipedia_en_ne_si_test_sets")
    with tarfile.open(put(PLANS["bn_IN"].train[0].url), "w:gz") as t:
        for s in ("train", "dev", "test"):
            t.add(FIX / "ted" / f"all_talks_{s}.tsv", arcname=f"all_talks_{s}.tsv")
    for s, name in zip(PLANS["kk_KZ"].train, ("news-commentary-v14.en-kk.tsv", "wikititles-v1.kk-en.tsv")):
        put(s.url).write_bytes(gzip.compress((FIX / "wmt19" / name).read_bytes()))
    for url, folder in (("https://data.statmt.org/wmt19/translation-task/test.tgz", "sgm"),
                        ("https://data.statmt.org/wmt19/translation-task/dev.tgz", "dev")):
        with tarfile.open(put(url), "w:gz") as t:
            t.add(FIX / "wmt19" / folder, arcname=folder)
    return root


def lines(p: Path) -> list[str]:
    return p.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("ml50")
    mirror = make_mirror(root / "mirror")
    out = root / "out"
    rc = main(["data", "ml50", "--out", str(out), "--mirror", str(mirror), "--no-checksums",
               "--langs", ",".join(LANGS + ["swh_Latn", "tl_XX"])])
    return out, mirror, rc


def test_ml50_end_to_end(built):
    out, _mirror, rc = built
    m = json.loads((out / "manifest.json").read_text())
    st = {k: v["status"] for k, v in m["languages"].items()}
    assert st == {"kk_KZ": "ok", "si_LK": "ok", "bn_IN": "ok", "sw_KE": "unavailable", "tl_XX": "unavailable",
                  "xh_ZA": "ok"}
    assert "no download script" in m["languages"]["sw_KE"]["reason"]
    assert rc == 0
    raw, clean = out / "raw", out / "clean"
    # fairseq's layout and line alignment in every folder
    for folder in (raw, out / "dedup", clean):
        for x in LANGS:
            for split in ("train", "valid", "test") if x != "xh_ZA" else ("train", "valid"):
                a = folder / f"{split}.{x}-en_XX.{x}"
                b = folder / f"{split}.{x}-en_XX.en_XX"
                assert len(lines(a)) == len(lines(b)) > 0, (folder.name, a.name)
    # sacrebleu test set through the mirror-populated cache: its text exactly (sacrebleu keeps SGML
    # escapes, and fairseq checks its test files against `sacrebleu -t` for BLEU 100)
    assert lines(raw / "test.kk_KZ-en_XX.en_XX")[3] == "Kazakh test sentence 3 &amp; more"
    assert len(lines(raw / "valid.kk_KZ-en_XX.kk_KZ")) == 6
    # xh: 8 identical OPUS corpora -> dedup keeps one copy; valid is a seeded hold-out
    d = m["steps_counts"]["dedup"]["xh_ZA-en_XX"]["train"]
    assert d["drop_duplicate"] == d["in"] - d["out"] and d["out"] <= 32
    # leakage: no training side equals any valid/test sentence of any direction (after strip)
    held = set()
    for p in clean.iterdir():
        if p.name.startswith(("valid.", "test.")):
            held |= {x.strip() for x in lines(p)}
    for p in clean.glob("train.*"):
        assert not {x.strip() for x in lines(p)} & held, p.name
    # the planted overlaps were in raw train and are gone
    assert "Sinhala dev sentence 2" in lines(raw / "train.si_LK-en_XX.en_XX")
    assert "Kazakh test sentence 3 &amp; more" in lines(raw / "train.kk_KZ-en_XX.en_XX")
    assert m["steps_counts"]["clean"]["kk_KZ-en_XX"]["train"]["drop_overlap"] >= 1
    # TED NULL rows dropped
    assert len(lines(raw / "valid.bn_IN-en_XX.bn_IN")) == 5


def test_ml50_rerun_is_skipped_and_identical(built, tmp_path):
    out, mirror, _ = built
    before = {p.name: p.read_bytes() for p in (out / "clean").iterdir() if not p.name.startswith(".")}
    ml50.build(out, langs=LANGS, mirror=str(mirror), verify_checksums=False)
    after = {p.name: p.read_bytes() for p in (out / "clean").iterdir() if not p.name.startswith(".")}
    assert before == after


def test_missing_mirror_file_and_manual_sources_are_reported(tmp_path):
    m = ml50.build(tmp_path / "o", langs=["hi_IN", "cs_CZ"], mirror=str(tmp_path / "empty"),
                   steps=("download",))
    hi = m["languages"]["hi_IN"]
    assert hi["status"] == "failed" and "not in the mirror" in hi["error"] and "parallel.tgz" in hi["error"]
    cs = m["languages"]["cs_CZ"]
    assert cs["manual"][0]["present"] is False and "czeng" in cs["manual"][0]["instructions"].lower()
    (tmp_path / "o" / "manual").mkdir()
    (tmp_path / "o" / "manual" / "czeng20-train").write_text("x\n")
    assert ml50.check_manual(PLANS["cs_CZ"], tmp_path / "o" / "manual")[0]["present"] is True
