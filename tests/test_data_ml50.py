"""`mtkit data ml50` end to end from a fixture mirror (xh_ZA, si_LK, bn_IN, kk_KZ; it_IT, nl_XX, vi_VN, km_KH, ps_AF; reported gaps)."""
from __future__ import annotations

import gzip
import io
import json
import lzma
import tarfile
import zipfile
from pathlib import Path

import pytest

from data_prep.corpora import ml50
from data_prep.corpora.ml50_table import PLANS, IwsltTrain, Plain, PlainDir, Tmx, Tsv, Xlf
from mtkit.cli import main
from mtkit.io import mirror_path

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
                z.write(FIX / "opus" / "GNOME.en-si.en", s.en_member)
                z.write(FIX / "opus" / "GNOME.en-si.si", s.xx_member)
            else:
                corpus = s.en_member.split(".")[0]
                z.writestr(s.en_member, f"{corpus} English line\n")
                z.writestr(s.xx_member, f"{corpus} සිංහල\n")
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

def assert_no_leakage(clean):
    """No training side equals any valid/test sentence of any direction (after strip)."""
    held = set()
    for p in clean.iterdir():
        if p.name.startswith(("valid.", "test.")):
            held |= {x.strip() for x in lines(p)}
    for p in clean.glob("train.*"):
        assert not {x.strip() for x in lines(p)} & held, p.name



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
    assert_no_leakage(clean)
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


# --- IWSLT17 multilingual (it, nl), IWSLT15 (vi) and WMT20 ps-km (km, ps) -----------------------

NEW = ["it_IT", "nl_XX", "vi_VN", "km_KH", "ps_AF"]


def _tar(dst: Path, folder: Path, arcname: str) -> None:
    with tarfile.open(dst, "w:gz") as t:
        t.add(folder, arcname=arcname)


def make_mirror_new(root: Path) -> Path:
    """WIT3 tgz archives, WMT20 ps-km files (.xz TSV, {xx}-parallel.tgz), wikititles .gz, WMT20 dev.tgz."""
    def put(url: str) -> Path:
        p = mirror_path(root, url)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    iw = FIX / "iwslt"
    done: set[str] = set()
    for code in ("it_IT", "nl_XX", "vi_VN"):
        plan, xx = PLANS[code], code[:2]
        for s in plan.train + plan.valid + plan.test:
            if s.url in done:
                continue
            done.add(s.url)
            if "trnmted" in s.url:
                _tar(put(s.url), iw / "2017-01-trnmted" / "DeEnItNlRo-DeEnItNlRo", "DeEnItNlRo-DeEnItNlRo")
            elif "mted-test" in s.url:
                _tar(put(s.url), iw / "2017-01-mted-test" / f"{xx}-en", f"{xx}-en")
            else:
                release = "2015-01-test" if "2015-01-test" in s.url else "2015-01"
                _tar(put(s.url), iw / release / "vi-en", "vi-en")
    w = FIX / "wmt20"
    for code in ("km_KH", "ps_AF"):
        xx = code[:2]
        for s in PLANS[code].train:
            if isinstance(s, PlainDir):
                _tar(put(s.url), w / "ps-km" / f"{xx}-parallel", f"{xx}-parallel")
            elif s.url.endswith(".xz"):
                put(s.url).write_bytes(lzma.compress((w / "ps-km" / f"wmt20-sent.en-{xx}").read_bytes()))
            else:
                put(s.url).write_bytes(gzip.compress((w / "wikititles-v2.ps-en.tsv").read_bytes()))
    _tar(put(PLANS["km_KH"].valid[0].url), w / "dev", "dev")
    return root


@pytest.fixture(scope="module")
def built_new(tmp_path_factory):
    root = tmp_path_factory.mktemp("ml50new")
    mirror = make_mirror_new(root / "mirror")
    out = root / "out"
    rc = main(["data", "ml50", "--out", str(out), "--mirror", str(mirror), "--langs", ",".join(NEW)])
    return out, rc


def test_ml50_iwslt_and_ps_km_end_to_end(built_new):
    out, rc = built_new
    m = json.loads((out / "manifest.json").read_text())
    assert {k: v["status"] for k, v in m["languages"].items()} == {x: "ok" for x in NEW}
    assert all(m["languages"][x]["not_automated"] == [] for x in NEW)
    assert rc == 0
    raw, clean = out / "raw", out / "clean"
    for folder in (raw, out / "dedup", clean):
        for x in NEW:
            for split in ("train", "valid", "test"):
                a, b = folder / f"{split}.{x}-en_XX.{x}", folder / f"{split}.{x}-en_XX.en_XX"
                assert len(lines(a)) == len(lines(b)) > 0, (folder.name, a.name)
    # IWSLT train.tags: metadata dropped, titles/descriptions kept untagged, lines stripped;
    # only the it-en pair of the multilingual archive is read
    it = lines(raw / "train.it_IT-en_XX.it_IT")
    assert len(it) == 15 and it[0] == "Frase italiana title 1" and it[2] == "Frase italiana train 0"
    assert not any(x.startswith("<") or "Deutscher" in x for x in it)
    assert lines(raw / "train.it_IT-en_XX.en_XX")[2] == "Italian sentence train 0"
    # dev/test xml: segments only, U+2019 -> ' (fairseq's convert_valid_test), entities unescaped
    assert lines(raw / "valid.vi_VN-en_XX.en_XX")[1] == "It's a dev sentence with a curly quote."
    assert lines(raw / "test.nl_XX-en_XX.en_XX") == [f"Dutch sentence test {i} & more" for i in range(4)]
    assert len(lines(raw / "valid.it_IT-en_XX.it_IT")) == 5
    # km: {xx}-parallel/* in `sort -V` order (GNOME, Tatoeba.v2, Tatoeba.v10), then wmt20-sent (en first)
    km = lines(raw / "train.km_KH-en_XX.km_KH")
    assert len(km) == 7 + 9 and km[3].endswith("Tatoeba.v2 0") and km[5].endswith("Tatoeba.v10 0")
    assert lines(raw / "train.km_KH-en_XX.en_XX")[7] == "English web sentence km 0"
    assert len(lines(raw / "train.ps_AF-en_XX.ps_AF")) == 7 + 9 + 4  # + wikititles v2
    assert lines(raw / "test.ps_AF-en_XX.en_XX") == [f"English ps devtest sentence {i}" for i in range(3)]
    # dedup: the duplicated IWSLT pair is dropped
    assert m["steps_counts"]["dedup"]["vi_VN-en_XX"]["train"]["drop_duplicate"] == 1
    # leakage: planted test/dev sentences were in raw train and are gone; none remains anywhere
    assert "Frase italiana test 2" in it
    assert "English km dev sentence 1" in lines(raw / "train.km_KH-en_XX.en_XX")
    for x in NEW:
        assert m["steps_counts"]["clean"][f"{x}-en_XX"]["train"]["drop_overlap"] >= 1, x
    assert_no_leakage(clean)


# --- every WMT training entry of the table, read from an archive laid out as fairseq's patterns expect

WMT_LANGS = ["es_XX", "fr_XX", "ro_RO", "lv_LV", "fi_FI", "et_EE", "lt_LT", "de_DE", "ru_RU", "zh_CN", "ja_XX",
             "ta_IN", "pl_PL", "cs_CZ"]


def _concrete(member: str) -> str:
    """A plausible real path for a table member: globs filled in, bare names put in a subfolder."""
    if member.startswith("*"):
        return "training/" + member.lstrip("*")
    if "*" in member:
        return member.replace("*", "")
    return member if "/" in member else "corpus-v1/" + member


def _pack(dst: Path, url: str, files: dict[str, bytes]) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if url.endswith(".zip"):
        with zipfile.ZipFile(dst, "a" if dst.exists() else "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
    elif url.endswith((".tgz", ".tar.gz", ".tar")):
        old = {}
        if dst.exists():
            with tarfile.open(dst) as t:
                old = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
        old.update(files)
        with tarfile.open(dst, "w:gz" if not url.endswith(".tar") else "w") as t:
            for name, data in old.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    else:
        (data,) = files.values()
        dst.write_bytes(gzip.compress(data) if url.endswith(".gz") else
                        lzma.compress(data) if url.endswith(".xz") else data)


def test_every_wmt_training_entry_reads_from_its_archive(tmp_path):
    mirror = tmp_path / "mirror"
    expect: dict[str, list[tuple[str, str]]] = {}
    for code in WMT_LANGS:
        xx = code[:2]
        for i, s in enumerate(PLANS[code].train):
            tag = f"{code}-{i}"
            x, e = f"{xx} {tag} a", f"en {tag} a"
            dst = tmp_path / "manual" / s.manual if s.manual else mirror_path(mirror, s.url)
            if isinstance(s, Plain):
                raw = {m: (t + "\n").encode() for m, t in ((s.xx_member, x), (s.en_member, e))}
                files = {_concrete(m): gzip.compress(v) if m.endswith(".gz") else v for m, v in raw.items()}
            elif isinstance(s, Tsv):
                cols = ["0.9"] * 7
                cols[s.xx_col], cols[s.en_col] = x, e
                line = (s.sep.join(cols) + "\n").encode()
                files = {_concrete(s.member) if s.member else "f": line}
            elif isinstance(s, Tmx):
                tmx_text = (f'<tmx><body><tu><tuv xml:lang="en"><seg>{e}</seg></tuv>'
                            f'<tuv xml:lang="{xx}"><seg>{x}</seg></tuv></tu></body></tmx>').encode()
                m = s.member
                files = {("rapid2016.en-lt.tmx" if m == "*.tmx" else _concrete(m)) if m else "f": tmx_text}
            elif isinstance(s, Xlf):
                files = {"f": (f'<trans-unit id="1">\n<source xml:lang="{xx}">{x}</source>\n'
                               f'<target xml:lang="en">{e}</target>\n</trans-unit>\n').encode()}
            elif isinstance(s, IwsltTrain):
                files = {s.xx_member: f"<talkid>1</talkid>\n<title>t</title>\n{x}\n".encode(),
                         s.en_member: f"<talkid>1</talkid>\n<title>t</title>\n{e}\n".encode()}
            else:
                raise AssertionError(s)
            _pack(dst, s.url or dst.name, files)
            if getattr(s, "parts", ()):  # UN v1.0: a tarball split into .00/.01[/.02]
                data, n = dst.read_bytes(), len(s.parts)
                for k, sfx in enumerate(s.parts):
                    dst.with_name(dst.name + sfx).write_bytes(data[k * len(data) // n:(k + 1) * len(data) // n])
                dst.unlink()
            expect.setdefault(code, []).append((x, e))
    ctx = ml50.Ctx(tmp_path / "out", str(mirror), verify=False, manual=tmp_path / "manual")
    for code in WMT_LANGS:
        plan = PLANS[code]
        ml50.download(ml50.Plan(train=plan.train), ctx)
        got = list(ml50._chain(plan.train, code[:2], ctx))
        assert got == expect[code], code
    assert len(PLANS["ja_XX"].train) == 7 and len(PLANS["ta_IN"].train) == 7 and len(PLANS["fr_XX"].train) == 5
    un = ctx.local(PLANS["ru_RU"].train[5].url)  # parts joined into place, then removed
    assert un.name == "UNv1.0.en-ru.tar.gz" and un.exists() and not list(un.parent.glob("*.tar.gz.0*"))
    # a manual source is read when in place and skipped (reported by check_manual) when not
    assert ml50.check_manual(PLANS["cs_CZ"], ctx.manual)[0]["present"]
    (ctx.manual / "czeng20-train").unlink()
    assert list(ml50._chain(PLANS["cs_CZ"].train, "cs", ctx)) == []
    assert not ml50.check_manual(PLANS["cs_CZ"], ctx.manual)[0]["present"]
