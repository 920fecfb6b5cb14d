"""Source-format parsers on small fixtures that mirror the real files, and the downloader."""
from __future__ import annotations

import gzip
import lzma
import tarfile
import zipfile
from pathlib import Path

import pytest

from data_prep.download import fetch
from data_prep.sources import iwslt, plain, ted, tmx, wmt
from mtkit.errors import InputError
from mtkit.io import mirror_path

FIX = Path(__file__).parent / "fixtures" / "data" / "sources"


def gz(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(gzip.compress(src.read_bytes()))
    return dst


def test_tmx_pairs_by_language_and_markup(tmp_path):
    f = gz(FIX / "opus" / "en-xh.tmx", tmp_path / "en-xh.tmx.gz")
    rows = list(tmx.read_tmx(f, "xh", "en"))
    assert len(rows) == 31  # the unit with only English is skipped
    assert rows[0] == ("Isivakalisi sesiXhosa 0 apha.", "English sentence number 0 here.")
    assert rows[-1] == ("Uphawu olungqindilili", "Markup <b>bold</b> & more")


def test_truncated_tmx_is_an_error(tmp_path):
    data = gzip.compress((FIX / "opus" / "en-xh.tmx").read_bytes())
    (tmp_path / "t.tmx.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="t.tmx.gz"):
        list(tmx.read_tmx(tmp_path / "t.tmx.gz", "xh", "en"))


def test_wmt_sgm_xml_tsv(tmp_path):
    kk = wmt.read_sgm(FIX / "wmt19" / "sgm" / "newstest2019-kken-src.kk.sgm")
    en = wmt.read_sgm(FIX / "wmt19" / "sgm" / "newstest2019-kken-ref.en.sgm")
    assert len(kk) == len(en) == 8 and en[3] == "Kazakh test sentence 3 & more"
    f = gz(FIX / "wmt19" / "news-commentary-v14.en-kk.tsv", tmp_path / "nc.tsv.gz")
    rows = list(wmt.read_tsv(f, None, 1, 0))
    assert rows[0] == ("Қазақ жаңалық 0", "English news line 0") and len(rows) == 21  # 1-column row skipped


def test_iwslt_train_tags_and_xml():
    d = FIX / "iwslt"
    en = iwslt.read_train_tags(d / "ar-en" / "train.tags.ar-en.en", None)
    assert en == ["A talk title", "TED talk description", "First spoken line.", "Second spoken line."]
    segs = wmt.read_sgm(d / "ar-en" / "IWSLT17.TED.tst2016.ar-en.en.xml")
    assert segs == ["Thank you.", "It's me."]


def test_ted_tsv_skips_null(tmp_path):
    tar = tmp_path / "ted_talks.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        for s in ("train", "dev", "test"):
            t.add(FIX / "ted" / f"all_talks_{s}.tsv", arcname=f"all_talks_{s}.tsv")
    bn = list(ted.read_ted(tar, "all_talks_dev.tsv", "bn", "en"))
    pt = list(ted.read_ted(tar, "all_talks_dev.tsv", "pt", "en"))
    assert len(bn) == 5 and len(pt) == 5  # __NULL__ and "_ _ NULL _ _" rows dropped
    assert all(not b.startswith("English") for b, _ in bn)
    with pytest.raises(InputError, match="no column"):
        list(ted.read_ted(tar, "all_talks_dev.tsv", "xx", "en"))


def test_plain_zip_and_mismatch(tmp_path):
    z = tmp_path / "en-si.txt.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.write(FIX / "opus" / "GNOME.en-si.en", "GNOME.en-si.en")
        f.write(FIX / "opus" / "GNOME.en-si.si", "GNOME.en-si.si")
        f.writestr("short.si", "one line\n")
    rows = list(plain.read_parallel(z, "GNOME.en-si.si", "GNOME.en-si.en"))
    assert len(rows) == 26 and rows[0] == ("ගොනුව 0 විවෘත කරන්න", "Open file number 0")
    with pytest.raises(InputError, match="not aligned"):
        list(plain.read_parallel(z, "GNOME.en-si.si", "short.si"))
    with pytest.raises(InputError, match="no member"):
        list(plain.read_parallel(z, "nope", "short.si"))


def test_fetch_from_mirror_checks_and_is_atomic(tmp_path):
    url = "https://example.org/data/file.txt.gz"
    m = mirror_path(tmp_path / "mirror", url)
    m.parent.mkdir(parents=True)
    m.write_bytes(b"payload")
    dst = fetch(url, tmp_path / "dl" / "file.txt.gz", mirror=tmp_path / "mirror", size=7)
    assert dst.read_bytes() == b"payload"
    with pytest.raises(InputError, match="checksum"):
        fetch(url, tmp_path / "dl2" / "f", mirror=tmp_path / "mirror", md5="0" * 32)
    assert not (tmp_path / "dl2" / "f").exists() and not list((tmp_path / "dl2").glob("*.part"))
    with pytest.raises(InputError, match="not in the mirror"):
        fetch("https://example.org/missing", tmp_path / "dl3" / "x", mirror=tmp_path / "mirror")


def test_fetch_resumes_with_range(tmp_path):
    """A local HTTP server that honours Range: a .part file is continued, not restarted."""
    import http.server
    import threading

    body = bytes(range(256)) * 40
    seen = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            rng = self.headers.get("Range")
            seen.append(rng)
            start = int(rng.split("=")[1].rstrip("-")) if rng else 0
            self.send_response(206 if rng else 200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start:])

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        dst = tmp_path / "f.bin"
        (tmp_path / "f.bin.part").write_bytes(body[:1000])
        fetch(f"http://127.0.0.1:{srv.server_port}/f.bin", dst, size=len(body))
        assert dst.read_bytes() == body and seen == ["bytes=1000-"]
    finally:
        srv.shutdown()


def test_archive_members_by_suffix_glob_and_xz(tmp_path):
    from data_prep.sources.archive import list_members, open_member

    tar = tmp_path / "a.tgz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(FIX / "wmt15" / "wiki", arcname="wiki")
        t.add(FIX / "opus" / "GNOME.en-si.en", arcname="training/europarl-v8.lv-en.en")
        t.add(FIX / "opus" / "GNOME.en-si.si", arcname="training/europarl-v8.lv-en.lv")
    assert sorted(list_members(tar)) == ["training/europarl-v8.lv-en.en", "training/europarl-v8.lv-en.lv",
                                         "wiki/fi-en/titles.fi-en"]
    with open_member(tar, "titles.fi-en") as f:  # by its end, like fairseq's */name globs
        assert f.read().startswith(b"Helsingin")
    with open_member(tar, "*europarl-v8.lv-en.lv") as f:
        assert f.readline() == (FIX / "opus" / "GNOME.en-si.si").read_bytes().splitlines(True)[0]
    with pytest.raises(InputError, match="2 members"):
        with open_member(tar, "*europarl-v8.lv-en.*"):
            pass
    z = tmp_path / "rapid.tmx.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.write(FIX / "opus" / "en-xh.tmx", "RAPID_2016.en-xh.tmx")
    assert len(list(tmx.read_tmx(z, "xh", "en", member="*.tmx"))) == 31
    xz = tmp_path / "wmt20-sent.en-km.xz"
    xz.write_bytes(lzma.compress((FIX / "wmt20" / "ps-km" / "wmt20-sent.en-km").read_bytes()))
    rows = list(wmt.read_tsv(xz, None, 1, 0))
    assert len(rows) == 9 and rows[0] == ("ប្រយោគខ្មែរ web 0", "English web sentence km 0")  # 1-column row skipped
    xz.write_bytes(xz.read_bytes()[:40])
    with pytest.raises(InputError, match="truncated"):
        list(wmt.read_tsv(xz, None, 1, 0))


def test_wiki_titles_triple_bar(tmp_path):
    rows = list(wmt.read_tsv(FIX / "wmt15" / "wiki" / "fi-en" / "titles.fi-en", None, 0, 1, sep="|||"))
    assert rows == [("Helsingin yliopisto", "University of Helsinki"), ("Suomi", "Finland")]


def test_parallel_dir_natural_order_and_missing_side(tmp_path):
    tar = tmp_path / "km-parallel.tgz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(FIX / "wmt20" / "ps-km" / "km-parallel", arcname="km-parallel")
    rows = list(plain.read_parallel_dir(tar, "km-parallel", "km"))
    assert [x.split()[1] for x, _ in rows] == ["GNOME"] * 3 + ["Tatoeba.v2"] * 2 + ["Tatoeba.v10"] * 2
    assert rows[0] == ("ប្រយោគខ្មែរ GNOME 0", "English GNOME km 0")
    with tarfile.open(tar, "w:gz") as t:
        t.add(FIX / "wmt20" / "ps-km" / "km-parallel" / "GNOME.km", arcname="km-parallel/GNOME.km")
    with pytest.raises(InputError, match="has no km-parallel/GNOME.en"):
        list(plain.read_parallel_dir(tar, "km-parallel", "km"))


def test_iwslt_titles_policy_and_xml_quotes(tmp_path):
    d = FIX / "iwslt" / "2015-01" / "vi-en"
    kept = iwslt.read_train_tags(d / "train.tags.vi-en.vi", None)
    dropped = iwslt.read_train_tags(d / "train.tags.vi-en.vi", None, keep_titles=False)
    assert len(kept) == len(dropped) + 4 and not any("title" in x for x in dropped)
    tar = tmp_path / "vi-en.tgz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(d, arcname="vi-en")
    rows = list(iwslt.read_xml_pair(tar, "IWSLT15.TED.tst2013.vi-en.vi.xml", "IWSLT15.TED.tst2013.vi-en.en.xml"))
    assert len(rows) == 5 and rows[1][1] == "It's a dev sentence with a curly quote."  # U+2019 -> '
    assert rows[0] == ("Câu tiếng Việt dev 0", "Vietnamese sentence dev 0")  # title line is not a segment


def test_rapid_xliff_pairs_within_units(tmp_path):
    f = gz(FIX / "wmt20" / "rapid" / "RAPID_2019.de-en.xlf", tmp_path / "RAPID_2019.de-en.xlf.gz")
    rows = list(wmt.read_xlf(f))
    assert rows == [("Die Kommission hat heute beschlossen.", "The Commission decided today."),
                    ("Forschung & Innovation", "Research & innovation"), ("Letzter Satz.", "Last sentence.")]


def test_fetch_parts_joins_split_tarball_atomically(tmp_path):
    from data_prep.download import fetch_parts

    url = "https://stuncorpusprod.blob.core.windows.net/corpusfiles/UNv1.0.en-xx.tar.gz"
    mirror, dest = tmp_path / "m", tmp_path / "d" / "UNv1.0.en-xx.tar.gz"
    p0 = mirror_path(mirror, url + ".00")
    p0.parent.mkdir(parents=True)
    p0.write_bytes(b"abc")
    with pytest.raises(InputError, match=r"\.01: not in the mirror"):
        fetch_parts(url, [".00", ".01"], dest, mirror=mirror)
    assert not dest.exists()
    mirror_path(mirror, url + ".01").write_bytes(b"def")
    assert fetch_parts(url, [".00", ".01"], dest, mirror=mirror).read_bytes() == b"abcdef"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["UNv1.0.en-xx.tar.gz"]
