"""The ML50 source table: for every language, where fairseq's ML50 data scripts get its data.

Every language maps to a :class:`Plan` of sources. Each source entry is an instance of one format
class (``Tmx``, ``Plain``, ``Tsv``, ...) that binds the reader of that format in ``data_prep.sources``,
as sacrebleu's dataset table binds a dataset class per entry: the builder (:mod:`.ml50`) only calls
``entry.fetch(ctx)`` and ``entry.read(ctx, xx)``. Where each URL, column and member name comes
from, and which ones could not be checked, is in docs/data_prep.md ("Sources"). Parts that
fairseq's scripts fetch but that are not automated here are listed in ``Plan.not_automated`` and
reported by every run.
"""
from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from data_prep.download import fetch, fetch_parts
from data_prep.sources import iwslt, plain, ted, tmx, wmt
from data_prep.sources.sacrebleu_sets import testset_files

if TYPE_CHECKING:
    from data_prep.corpora.ml50 import Ctx

Pairs = Iterator[tuple[str, str]]  # (xx, en)


@dataclass(frozen=True)
class Src(abc.ABC):
    """One source of (xx, en) pairs: a downloaded file (``url``), or a file placed by hand (``manual``,
    relative to ``--manual-dir``; read only when present)."""

    url: str | None = None
    manual: str | None = None

    def file(self, ctx: Ctx) -> Path | None:
        """The local file this source reads."""
        if self.manual:
            return ctx.manual / self.manual
        return ctx.local(self.url) if self.url else None

    def present(self, ctx: Ctx) -> bool:
        """Manual sources are read only when in place (their absence is reported, not an error)."""
        return not self.manual or (ctx.manual / self.manual).exists()

    def fetch(self, ctx: Ctx) -> Path | None:
        """Download (or copy from the mirror) what :meth:`read` needs; None when nothing to fetch."""
        return fetch(self.url, ctx.local(self.url), mirror=ctx.mirror) if self.url else None

    @abc.abstractmethod
    def read(self, ctx: Ctx, xx: str) -> Pairs:
        """(xx, en) pairs; ``xx`` is the ISO 639-1 code (``si``)."""


@dataclass(frozen=True)
class Tmx(Src):
    """OPUS / ParaCrawl / Tilde TMX (``member`` inside a zip, or a .tmx.gz)."""

    xx: str = ""
    member: str | None = None

    def read(self, ctx: Ctx, xx: str) -> Pairs:
        return tmx.read_tmx(self.file(ctx), self.xx, "en", member=self.member)


@dataclass(frozen=True)
class Plain(Src):
    """Two aligned plain-text members; ``parts``: the archive is split into ``url + suffix`` files."""

    xx_member: str = ""
    en_member: str = ""
    parts: tuple[str, ...] = ()

    def fetch(self, ctx: Ctx) -> Path | None:
        if self.url and self.parts:
            return fetch_parts(self.url, list(self.parts), ctx.local(self.url), mirror=ctx.mirror)
        return super().fetch(ctx)

    def read(self, ctx: Ctx, xx: str) -> Pairs:
        return _swap(plain.read_parallel(self.file(ctx), self.en_member, self.xx_member))


@dataclass(frozen=True)
class PlainDir(Src):
    """Every ``folder/NAME.{xx}`` with its ``NAME.en`` in an archive (WMT20 ps/km-parallel)."""

    folder: str = ""
    xx: str = ""

    def read(self, ctx: Ctx, xx: str) -> Pairs:
        return plain.read_parallel_dir(self.file(ctx), self.folder, self.xx, "en")


@dataclass(frozen=True)
class Tsv(Src):
    """Column-separated pairs; 0-based columns (fairseq's ``cut -f`` numbers minus one)."""

    xx_col: int = 0
    en_col: int = 1
    member: str | None = None
    sep: str = "\t"

    def read(self, ctx: Ctx, xx: str) -> Pairs:
        return wmt.read_tsv(self.file(ctx), self.member, self.xx_col, self.en_col, sep=self.sep)


@dataclass(frozen=True)
class Ted(Src):
    """One split file of the TED58 multi-way TSV; ``col`` is the language's column."""

    member: str = ""
    col: str = ""

    def read(self, ctx: Ctx, xx: str) -> Pairs:
        return ted.read_ted(self.file(ctx), self.member, self.col, "en")


@dataclass(frozen=True)
class IwsltTrain(Src):
    """WIT3 ``train.tags`` pair; ``keep_titles=False`` drops every tagged line (fairseq's ja TED)."""

    xx_member: str = ""
    en_member: str = ""
    keep_titles: bool = True

    def read(self, ctx: Ctx, xx: str) -> Pairs:
        return iwslt.read_train(self.file(ctx), self.xx_member, self.en_member, self.keep_titles)


@dataclass(frozen=True)
class IwsltXml(Src):
    """WIT3 dev/test XML pair (``<seg>`` lines)."""

    xx_member: str = ""
    en_member: str = ""

    def read(self, ctx: Ctx, xx: str) -> Pairs:
        return iwslt.read_xml_pair(self.file(ctx), self.xx_member, self.en_member)


@dataclass(frozen=True)
class Xlf(Src):
    """RAPID XLIFF; ``xx_side``: which of ``source``/``target`` holds the non-English text."""

    xx_side: str = "source"

    def read(self, ctx: Ctx, xx: str) -> Pairs:
        rows = wmt.read_xlf(self.file(ctx))
        return rows if self.xx_side == "source" else _swap(rows)


@dataclass(frozen=True)
class SacrebleuSet(Src):
    """A WMT/IWSLT test set through sacrebleu's dataset API (its own cache, our mirror)."""

    name: str = ""
    langpair: str = ""

    def fetch(self, ctx: Ctx) -> Path | None:
        testset_files(self.name, self.langpair, ctx.sacrebleu, ctx.mirror, ctx.verify)
        return None

    def read(self, ctx: Ctx, xx: str) -> Pairs:
        src, ref = testset_files(self.name, self.langpair, ctx.sacrebleu, ctx.mirror, ctx.verify)
        pairs = plain.read_parallel(ref, None, None, src_archive=src)  # (src, ref)
        return _swap(pairs) if self.langpair.startswith("en-") else pairs


def _swap(pairs: Iterator[tuple[str, str]]) -> Pairs:
    for a, b in pairs:
        yield b, a


@dataclass
class Plan:
    train: list[Src] = field(default_factory=list)
    valid: list[Src] = field(default_factory=list)
    test: list[Src] = field(default_factory=list)
    holdout_valid: int = 0  # af/xh: valid = first N lines of train shuffled with seed 43
    halves: Src | None = None  # ja/ta/pl: valid = odd lines, test = even lines (split -n r/1/2, r/2/2)
    manual: list[tuple[str, str]] = field(default_factory=list)  # (relative path, instructions)
    not_automated: list[str] = field(default_factory=list)
    unavailable: str | None = None

    def sources(self) -> list[Src]:
        return self.train + self.valid + self.test + ([self.halves] if self.halves else [])


OPUS = "https://object.pouta.csc.fi"
FLORES_V1 = "https://github.com/facebookresearch/flores/raw/master/data/wikipedia_en_ne_si_test_sets.tgz"
TED = "http://phontron.com/data/ted_talks.tar.gz"
LOTUS = "http://lotus.kuee.kyoto-u.ac.jp/WAT/indic-multilingual/indic_languages_corpus.tar.gz"
WAT_MY = "http://lotus.kuee.kyoto-u.ac.jp/WAT/my-en-data/wat2020.my-en.zip"
IITB = "http://www.cfilt.iitb.ac.in/~moses/iitb_en_hi_parallel/iitb_corpus_download"
WIT3 = "https://raw.githubusercontent.com/hlt-mt/WIT3/master/archive"  # fairseq: https://wit3.fbk.eu/archive
ST = "http://www.statmt.org"
DST = "http://data.statmt.org"
PARACRAWL = "https://s3.amazonaws.com/web-language-models/paracrawl"
WMT13_EP = f"{ST}/wmt13/training-parallel-europarl-v7.tgz"
WMT13_CC = f"{ST}/wmt13/training-parallel-commoncrawl.tgz"
WMT13_UN = f"{ST}/wmt13/training-parallel-un.tgz"
WMT20_DEV = "https://data.statmt.org/wmt20/translation-task/dev.tgz"  # sacrebleu's wmt20/dev tarball
PS_KM = f"{DST}/wmt20/translation-task/ps-km"


def _tmx(corpus_version: str, pair: str, xx: str) -> Src:
    return Tmx(f"{OPUS}/OPUS-{corpus_version}/tmx/{pair}.tmx.gz", xx=xx)


def _moses(corpus: str, version: str, xx: str) -> Src:
    pair = "-".join(sorted(["en", xx]))
    return Plain(f"{OPUS}/OPUS-{corpus}/{version}/moses/{pair}.txt.zip",
                 xx_member=f"{corpus}.{pair}.{xx}", en_member=f"{corpus}.{pair}.en")


def _flores_v1(split: str, xx: str) -> Src:
    d = "wikipedia_en_ne_si_test_sets"
    return Plain(FLORES_V1, xx_member=f"{d}/wikipedia.{split}.{xx}-en.{xx}", en_member=f"{d}/wikipedia.{split}.{xx}-en.en")


def _ted(code: str) -> Plan:
    return Plan(train=[Ted(TED, member="all_talks_train.tsv", col=code)],
                valid=[Ted(TED, member="all_talks_dev.tsv", col=code)],
                test=[Ted(TED, member="all_talks_test.tsv", col=code)])


def _lotus(xx: str) -> Plan:
    d = f"indic_languages_corpus/bilingual/{xx}-en"
    return Plan(**{s: [Plain(LOTUS, xx_member=f"{d}/{f}.{xx}", en_member=f"{d}/{f}.en")]
                   for s, f in (("train", "train"), ("valid", "dev"), ("test", "test"))})


def _sb(name: str, lp: str) -> Src:
    return SacrebleuSet(name=name, langpair=lp)


def _tsv(url: str, xx_col: int, en_col: int | None = None, **kw) -> Src:
    """0-based columns (fairseq's ``cut -f`` numbers minus one)."""
    return Tsv(url, xx_col=xx_col, en_col=1 - xx_col if en_col is None else en_col, **kw)


def _pl(url: str, stem: str, xx: str) -> Src:
    """Two aligned members ``{stem}.{xx}`` and ``{stem}.en`` (stem: a path, a name or a glob)."""
    return Plain(url, xx_member=f"{stem}.{xx}", en_member=f"{stem}.en")


def _wikimatrix(xx: str) -> Src:
    # WikiMatrix.v1.{pair}.langid.tsv: score, then the two languages in the pair's order
    pair = "-".join(sorted(["en", xx]))
    return _tsv(f"{DST}/wmt20/translation-task/WikiMatrix/WikiMatrix.v1.{pair}.langid.tsv.gz",
                1 if pair.startswith(xx) else 2, 2 if pair.startswith(xx) else 1)


def _iwslt(archive: str, pair: str, xx: str) -> Src:
    return IwsltTrain(archive, xx_member=f"train.tags.{pair}.{xx}", en_member=f"train.tags.{pair}.en")


def _iwslt_xml(archive: str, prefix: str, pair: str, xx: str) -> Src:
    return IwsltXml(archive, xx_member=f"{prefix}.{pair}.{xx}.xml", en_member=f"{prefix}.{pair}.en.xml")


def _ps_km(xx: str) -> Plan:
    # download_wmt20.sh: all.{xx} = opus (= {xx}-parallel/*), paracrawl (wmt20-sent), [ps: wikititles]
    # in `sort -V` order; valid/test: dev/wikipedia.{dev,devtest}.{xx}-en from WMT20's dev.tgz
    train = [PlainDir(f"{PS_KM}/{xx}-parallel.tgz", folder=f"{xx}-parallel", xx=xx),
             _tsv(f"{PS_KM}/wmt20-sent.en-{xx}.xz", 1, 0)]
    if xx == "ps":
        train.append(_tsv(f"{DST}/wikititles/v2/wikititles-v2.ps-en.tsv.gz", 0))
    return Plan(train=train, valid=[_pl(WMT20_DEV, f"dev/wikipedia.dev.{xx}-en", xx)],
                test=[_pl(WMT20_DEV, f"dev/wikipedia.devtest.{xx}-en", xx)])


def _iwslt17_mt(xx: str) -> Plan:
    mt = f"{WIT3}/2017-01-trnmted/texts/DeEnItNlRo/DeEnItNlRo/DeEnItNlRo-DeEnItNlRo.tgz"
    test = f"{WIT3}/2017-01-mted-test/texts/{xx}/en/{xx}-en.tgz"
    return Plan(train=[_iwslt(mt, f"{xx}-en", xx)], valid=[_iwslt_xml(mt, "IWSLT17.TED.tst2010", f"{xx}-en", xx)],
                test=[_iwslt_xml(test, "IWSLT17.TED.tst2017.mltlng", f"{xx}-en", xx)])


UNCORPUS = "https://stuncorpusprod.blob.core.windows.net/corpusfiles"


def _un_v1(xx: str, nparts: int) -> Src:
    """UN v1.0: one tarball split into .tar.gz.00/.01[/.02] (joined after download);
    members ``en-{xx}/UNv1.0.en-{xx}.{xx,en}`` (download_wmt20.sh's prepare_uncorpus links)."""
    return Plain(f"{UNCORPUS}/UNv1.0.en-{xx}.tar.gz", xx_member=f"en-{xx}/UNv1.0.en-{xx}.{xx}",
                 en_member=f"en-{xx}/UNv1.0.en-{xx}.en", parts=tuple(f".{i:02d}" for i in range(nparts)))


MANUAL_NOT_PARSED = ("checked for presence with instructions, not parsed: six corpora with their own file "
                     "names and encodings not checkable offline, datum2017 needs spaces removed")

PLANS: dict[str, Plan] = {
    "af_ZA": Plan(train=[_tmx("Tatoeba/v20190709", "af-en", "af"), _tmx("bible-uedin/v1", "af-en", "af"),
                         _tmx("GNOME/v1", "af-en", "af"), _tmx("QED/v2.0a", "af-en", "af"),
                         _tmx("KDE4/v2", "af-en", "af"), _tmx("OpenSubtitles/v2018", "af-en", "af"),
                         _tmx("SPC/v1", "af-en", "af"), _tmx("Ubuntu/v14.10", "af-en", "af")],
                  holdout_valid=1500),
    "xh_ZA": Plan(train=[_tmx("Tatoeba/v20190709", "en-xh", "xh"), _tmx("wikimedia/v20190628", "en-xh", "xh"),
                         _tmx("memat/v1", "en-xh", "xh"), _tmx("bible-uedin/v1", "en-xh", "xh"),
                         _tmx("GNOME/v1", "en-xh", "xh"), _tmx("XhosaNavy/v1", "en-xh", "xh"),
                         _tmx("KDE4/v2", "en-xh", "xh"), _tmx("Ubuntu/v14.10", "en-xh", "xh")],
                  holdout_valid=1500),
    "si_LK": Plan(train=[_moses("GNOME", "v1", "si"), _moses("Ubuntu", "v14.10", "si"), _moses("KDE4", "v2", "si"),
                         _moses("OpenSubtitles", "v2018", "si")],
                  valid=[_flores_v1("dev", "si")], test=[_flores_v1("test", "si")]),
    "ne_NP": Plan(train=[_moses("GNOME", "v1", "ne"), _moses("Ubuntu", "v14.10", "ne"), _moses("KDE4", "v2", "ne")],
                  valid=[_flores_v1("dev", "ne")], test=[_flores_v1("test", "ne")],
                  not_automated=["bible + bible_dup (needs Java bible-corpus-tools)", "GlobalVoices (URL changed upstream)",
                                 "Nepali Penn Treebank (patches + Moses)"]),
    "hi_IN": Plan(train=[Plain(f"{IITB}/parallel.tgz", xx_member="parallel/IITB.en-hi.hi",
                               en_member="parallel/IITB.en-hi.en")],
                  valid=[Plain(f"{IITB}/dev_test.tgz", xx_member="dev_test/dev.hi", en_member="dev_test/dev.en")],
                  test=[Plain(f"{IITB}/dev_test.tgz", xx_member="dev_test/test.hi", en_member="dev_test/test.en")]),
    "my_MM": Plan(**{s: [Plain(WAT_MY, xx_member=f"wat2020.my-en/alt/{f}.alt.my",
                               en_member=f"wat2020.my-en/alt/{f}.alt.en")]
                     for s, f in (("train", "train"), ("valid", "dev"), ("test", "test"))}),
    "ml_IN": _lotus("ml"), "ur_PK": _lotus("ur"), "te_IN": _lotus("te"),
    # IWSLT (download_iwslt_and_extract.sh): ar/ko test sets through sacrebleu; the rest from WIT3 archives
    "ar_AR": Plan(train=[IwsltTrain(f"{WIT3}/2017-01-trnted/texts/ar/en/ar-en.tgz", xx_member="ar-en/train.tags.ar-en.ar",
                                     en_member="ar-en/train.tags.ar-en.en")],
                  valid=[_sb("iwslt17/tst2016", "ar-en")], test=[_sb("iwslt17", "ar-en")]),
    "ko_KR": Plan(train=[IwsltTrain(f"{WIT3}/2017-01-trnted/texts/ko/en/ko-en.tgz", xx_member="ko-en/train.tags.ko-en.ko",
                                     en_member="ko-en/train.tags.ko-en.en")],
                  valid=[_sb("iwslt17/tst2016", "ko-en")], test=[_sb("iwslt17", "ko-en")]),
    "it_IT": _iwslt17_mt("it"),
    "nl_XX": _iwslt17_mt("nl"),
    "vi_VN": Plan(train=[_iwslt(f"{WIT3}/2015-01/texts/vi/en/vi-en.tgz", "vi-en", "vi")],
                  valid=[_iwslt_xml(f"{WIT3}/2015-01/texts/vi/en/vi-en.tgz", "IWSLT15.TED.tst2013", "vi-en", "vi")],
                  test=[_iwslt_xml(f"{WIT3}/2015-01-test/texts/vi/en/vi-en.tgz", "IWSLT15.TED.tst2015", "vi-en", "vi")]),
    # WMT <= 19 (download_wmt19_and_before.py): dev/test through sacrebleu; train = fairseq's patterns
    "es_XX": Plan(train=[_pl(WMT13_EP, "europarl-v7.es-en", "es"), _pl(WMT13_CC, "commoncrawl.es-en", "es"),
                         _pl(WMT13_UN, "un/*undoc.2000.es-en", "es"),
                         _pl(f"{ST}/wmt13/training-parallel-nc-v8.tgz", "news-commentary-v8.es-en", "es")],
                  valid=[_sb("wmt12", "en-es")], test=[_sb("wmt13", "en-es")]),
    "fr_XX": Plan(train=[_pl(WMT13_EP, "europarl-v7.fr-en", "fr"), _pl(WMT13_CC, "commoncrawl.fr-en", "fr"),
                         _pl(WMT13_UN, "un/undoc.2000.fr-en", "fr"),
                         _pl(f"{ST}/wmt14/training-parallel-nc-v9.tgz", "*news-commentary-v9.fr-en", "fr"),
                         # a tar of two .gz files (fairseq: "it is actually a gz.tar"), 22.5M pairs
                         Plain(f"{ST}/wmt10/training-giga-fren.tar", xx_member="giga-fren.release2.fixed.fr.gz",
                               en_member="giga-fren.release2.fixed.en.gz")],
                  valid=[_sb("wmt13", "en-fr")], test=[_sb("wmt14/full", "en-fr")]),
    "ro_RO": Plan(train=[_pl(f"{DST}/wmt16/translation-task/training-parallel-ep-v8.tgz", "*europarl-v8.ro-en", "ro"),
                         _tmx("SETIMES/v2", "en-ro", "ro")],
                  valid=[_sb("wmt16/dev", "en-ro")], test=[_sb("wmt16", "en-ro")]),
    "tr_TR": Plan(train=[_tmx("SETIMES/v2", "en-tr", "tr")],
                  valid=[_sb("wmt17/dev", "en-tr"), _sb("wmt16", "en-tr")], test=[_sb("wmt17", "en-tr")]),
    "lv_LV": Plan(train=[_pl(f"{DST}/wmt17/translation-task/training-parallel-ep-v8.tgz", "*europarl-v8.lv-en", "lv"),
                         _pl(f"{DST}/wmt17/translation-task/rapid2016.tgz", "rapid2016.en-lv", "lv"),
                         _pl(f"{DST}/wmt17/translation-task/leta.v1.tgz", "leta", "lv"),
                         _pl(f"{DST}/wmt17/translation-task/dcep.lv-en.v1.tgz", "dcep", "lv"),
                         _pl(f"{DST}/wmt17/translation-task/books.lv-en.v1.tgz", "farewell", "lv")],
                  valid=[_sb("wmt17/dev", "en-lv")], test=[_sb("wmt17", "en-lv")]),
    "fi_FI": Plan(train=[_pl(f"{DST}/wmt17/translation-task/training-parallel-ep-v8.tgz", "*europarl-v8.fi-en", "fi"),
                         _tsv(f"{ST}/wmt15/wiki-titles.tgz", 0, member="wiki/fi-en/titles.fi-en", sep="|||"),
                         _pl(f"{DST}/wmt17/translation-task/rapid2016.tgz", "rapid2016.en-fi", "fi")],
                  valid=[_sb("wmt17/dev", "en-fi"), _sb("wmt16", "en-fi")], test=[_sb("wmt17", "en-fi")]),
    "et_EE": Plan(train=[_pl(f"{DST}/wmt18/translation-task/training-parallel-ep-v8.tgz", "*europarl-v8.et-en", "et"),
                         _pl(f"{PARACRAWL}/release1/paracrawl-release1.en-et.zipporah0-dedup-clean.tgz",
                             "paracrawl-release1.en-et.zipporah0-dedup-clean", "et"),
                         _pl(f"{DST}/wmt18/translation-task/rapid2016.tgz", "rapid2016.en-et", "et")],
                  valid=[_sb("wmt18/dev", "en-et")], test=[_sb("wmt18", "en-et")]),
    "gu_IN": Plan(train=[_tsv(f"{DST}/wikititles/v1/wikititles-v1.gu-en.tsv.gz", 0)],
                  valid=[_sb("wmt19/dev", "gu-en")], test=[_sb("wmt19", "gu-en")]),
    "kk_KZ": Plan(train=[_tsv(f"{DST}/news-commentary/v14/training/news-commentary-v14-wmt19.en-kk.tsv.gz", 1),
                         _tsv(f"{DST}/wikititles/v1/wikititles-v1.kk-en.tsv.gz", 0)],
                  valid=[_sb("wmt19/dev", "kk-en")], test=[_sb("wmt19", "kk-en")]),
    "lt_LT": Plan(train=[_tsv(f"{ST}/europarl/v9/training/europarl-v9.lt-en.tsv.gz", 0),
                         Tmx(f"{PARACRAWL}/release3/en-lt.bicleaner07.tmx.gz", xx="lt"),
                         _tsv(f"{DST}/wikititles/v1/wikititles-v1.lt-en.tsv.gz", 0),
                         Tmx("https://tilde-model.s3-eu-west-1.amazonaws.com/rapid2016.en-lt.tmx.zip",
                             xx="lt", member="*.tmx")],
                  valid=[_sb("wmt19/dev", "lt-en")], test=[_sb("wmt19", "lt-en")]),
    # WMT20 script (download_wmt20.sh)
    "de_DE": Plan(train=[_tsv(f"{ST}/europarl/v10/training/europarl-v10.de-en.tsv.gz", 0),
                         _tsv(f"{PARACRAWL}/release5.1/en-de.txt.gz", 1, 0),
                         _pl(WMT13_CC, "commoncrawl.de-en", "de"),
                         _tsv(f"{DST}/news-commentary/v15/training/news-commentary-v15.de-en.tsv.gz", 0),
                         _tsv(f"{DST}/wikititles/v2/wikititles-v2.de-en.tsv.gz", 0),
                         Xlf(f"{DST}/wmt20/translation-task/rapid/RAPID_2019.de-en.xlf.gz", xx_side="source"),
                         _wikimatrix("de")],
                  valid=[_sb("wmt18", "de-en")], test=[_sb("wmt19", "de-en")]),
    # UN v1.0: fairseq's prepare_uncorpus starts with `$URLS=$1` (not an assignment in bash), so as
    # written it fetches nothing; the table follows its intent (UN v1.0 for ru and zh)
    "ru_RU": Plan(train=[_pl(f"{PARACRAWL}/release1/paracrawl-release1.en-ru.zipporah0-dedup-clean.tgz",
                             "paracrawl-release1.en-ru.zipporah0-dedup-clean", "ru"),
                         _pl(WMT13_CC, "commoncrawl.ru-en", "ru"),
                         _tsv(f"{DST}/news-commentary/v15/training/news-commentary-v15.en-ru.tsv.gz", 1),
                         _tsv(f"{DST}/wikititles/v2/wikititles-v2.ru-en.tsv.gz", 0),
                         Plain(manual="wmt19_1mcorpus.zip", xx_member="corpus.en_ru.1m.ru",
                               en_member="corpus.en_ru.1m.en"),
                         _un_v1("ru", 3),
                         _wikimatrix("ru")],
                  valid=[_sb("wmt18", "ru-en")], test=[_sb("wmt19", "ru-en")],
                  manual=[("wmt19_1mcorpus.zip", "Yandex 1M corpus: accept the licence at "
                                                 "https://translate.yandex.ru/corpus and save the zip here")]),
    "zh_CN": Plan(train=[_tsv(f"{DST}/news-commentary/v15/training/news-commentary-v15.en-zh.tsv.gz", 1),
                         _tsv(f"{DST}/wikititles/v2/wikititles-v2.zh-en.tsv.gz", 0),
                         _un_v1("zh", 2),
                         _wikimatrix("zh")],
                  valid=[_sb("wmt18", "zh-en")], test=[_sb("wmt19", "zh-en")],
                  manual=[("cwmt", "CWMT/CCMT corpora (casict2011, casict2015, datum2015, datum2017, neu2017): "
                                   "register at http://nlp.nju.edu.cn/cwmt-wmt and unpack them into this folder")],
                  not_automated=[f"CWMT/CCMT ({MANUAL_NOT_PARSED})"]),
    # czeng20-train: `sed '/^$/d' | cut -f5` (cs) and `cut -f6` (en)
    "cs_CZ": Plan(train=[Tsv(manual="czeng20-train", xx_col=4, en_col=5)],
                  valid=[_sb("wmt18", "cs-en")], test=[_sb("wmt19", "cs-en")],
                  manual=[("czeng20-train", "CzEng 2.0: register at https://ufal.mff.cuni.cz/czeng and place "
                                            "czeng20-train here (the only training source of cs_CZ in ML50)")]),
    "ja_XX": Plan(train=[_tsv("http://www.kecl.ntt.co.jp/icl/lirg/jparacrawl/release/2.0/bitext/en-ja.tar.gz", 3, 2,
                              member="en-ja/en-ja.bicleaner05.txt"),
                         _tsv(f"{DST}/news-commentary/v15/training/news-commentary-v15.en-ja.tsv.gz", 1),
                         _tsv(f"{DST}/wikititles/v2/wikititles-v2.ja-en.tsv.gz", 0),
                         _wikimatrix("ja"),
                         _tsv("https://nlp.stanford.edu/projects/jesc/data/split.tar.gz", 1, 0, member="split/train"),
                         _pl("http://www.phontron.com/kftt/download/kftt-data-1.0.tar.gz",
                             "kftt-data-1.0/data/orig/kyoto-train", "ja"),
                         # prepare_ja_ted drops every tagged line (titles and descriptions too)
                         IwsltTrain(f"{WIT3}/2017-01-trnted/texts/en/ja/en-ja.tgz", xx_member="en-ja/train.tags.en-ja.ja",
                                    en_member="en-ja/train.tags.en-ja.en", keep_titles=False)],
                  halves=_sb("wmt20/dev", "ja-en")),
    "ta_IN": Plan(train=[_tsv(f"{DST}/wikititles/v2/wikititles-v2.ta-en.tsv.gz", 0),
                         _wikimatrix("ta"),
                         _tsv(f"{DST}/pmindia/v1/parallel/pmindia.v1.ta-en.tsv", 1, 0),
                         _moses("Tanzil", "v1", "ta"),
                         _pl("http://preon.iiit.ac.in/~jerin/resources/datasets/pib-v0.tar", "pib/en-ta/train", "ta"),
                         _pl("http://preon.iiit.ac.in/~jerin/resources/datasets/mkb-v0.tar", "mkb/en-ta/mkb", "ta"),
                         _pl("http://ufal.mff.cuni.cz/~ramasamy/parallel/data/v2/en-ta-parallel-v2.tar.gz",
                             "en-ta-parallel-v2/corpus.bcn.train", "ta")],
                  halves=_sb("wmt20/dev", "ta-en"),
                  not_automated=["NLPC-UoM (two raw GitHub text files with a 3-line header, `tail -n +4`)"]),
    "pl_PL": Plan(train=[Tmx("https://tilde-model.s3-eu-west-1.amazonaws.com/rapid2019.en-pl.tmx.zip",
                             xx="pl", member="RAPID_2019.UNIQUE.en-pl.tmx")],
                  halves=_sb("wmt20/dev", "pl-en")),
    "km_KH": _ps_km("km"),
    "ps_AF": _ps_km("ps"),
    "sw_KE": Plan(unavailable="fairseq's ML50 data scripts have no download script for sw_KE"),
    "tl_XX": Plan(unavailable="fairseq's ML50 data scripts have no download script for tl_XX "
                              "(only a commented skip_langs entry in remove_valid_test_in_train.py)"),
}
for _code, _ted_col in (("bn_IN", "bn"), ("he_IL", "he"), ("fa_IR", "fa"), ("id_ID", "id"), ("sv_SE", "sv"),
                        ("pt_XX", "pt"), ("ka_GE", "ka"), ("th_TH", "th"), ("mr_IN", "mr"), ("hr_HR", "hr"),
                        ("uk_UA", "uk"), ("az_AZ", "az"), ("mk_MK", "mk"), ("gl_ES", "gl"), ("sl_SI", "sl"),
                        ("mn_MN", "mn")):
    PLANS[_code] = _ted(_ted_col)
