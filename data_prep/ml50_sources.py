"""The ML50 source table (after fairseq's examples/multilingual/data_scripts; see refs §1.2).

Every language maps to a :class:`Plan`. ``Src.kind`` names a reader in :mod:`data_prep.ml50`.
None of these URLs can be reached from the build machine, so none is verified here; the parsers
are tested on fixtures that mirror the real formats. Parts that fairseq's scripts fetch but that
are not automated here are listed in ``Plan.not_automated`` and reported by every run.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Src:
    kind: str  # tmx | plain | tsv | ted | iwslt_train | sacrebleu | sgm
    url: str | None = None
    args: dict = field(default_factory=dict)


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


OPUS = "https://object.pouta.csc.fi"
FLORES_V1 = "https://github.com/facebookresearch/flores/raw/master/data/wikipedia_en_ne_si_test_sets.tgz"
TED = "http://phontron.com/data/ted_talks.tar.gz"
LOTUS = "http://lotus.kuee.kyoto-u.ac.jp/WAT/indic-multilingual/indic_languages_corpus.tar.gz"
WAT_MY = "http://lotus.kuee.kyoto-u.ac.jp/WAT/my-en-data/wat2020.my-en.zip"
IITB = "http://www.cfilt.iitb.ac.in/~moses/iitb_en_hi_parallel/iitb_corpus_download"
WIT3 = "https://wit3.fbk.eu/archive"


def _tmx(corpus_version: str, pair: str, xx: str) -> Src:
    return Src("tmx", f"{OPUS}/OPUS-{corpus_version}/tmx/{pair}.tmx.gz", {"xx": xx})


def _moses(corpus: str, version: str, xx: str) -> Src:
    pair = "-".join(sorted(["en", xx]))
    return Src("plain", f"{OPUS}/OPUS-{corpus}/{version}/moses/{pair}.txt.zip",
               {"xx": f"{corpus}.{pair}.{xx}", "en": f"{corpus}.{pair}.en"})


def _flores_v1(split: str, xx: str) -> Src:
    d = "wikipedia_en_ne_si_test_sets"
    return Src("plain", FLORES_V1, {"xx": f"{d}/wikipedia.{split}.{xx}-en.{xx}", "en": f"{d}/wikipedia.{split}.{xx}-en.en"})


def _ted(code: str) -> Plan:
    return Plan(train=[Src("ted", TED, {"member": "all_talks_train.tsv", "col": code})],
                valid=[Src("ted", TED, {"member": "all_talks_dev.tsv", "col": code})],
                test=[Src("ted", TED, {"member": "all_talks_test.tsv", "col": code})])


def _lotus(xx: str) -> Plan:
    d = f"indic_languages_corpus/bilingual/{xx}-en"
    return Plan(**{s: [Src("plain", LOTUS, {"xx": f"{d}/{f}.{xx}", "en": f"{d}/{f}.en"})]
                   for s, f in (("train", "train"), ("valid", "dev"), ("test", "test"))})


def _sb(name: str, lp: str) -> Src:
    return Src("sacrebleu", None, {"name": name, "langpair": lp})


def _tsv(url: str, xx_col: int) -> Src:
    return Src("tsv", url, {"xx_col": xx_col, "en_col": 1 - xx_col})


WMT_REST = "commoncrawl, UN, news-commentary, paracrawl, rapid, wikimatrix and the other WMT training sets"

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
    "hi_IN": Plan(train=[Src("plain", f"{IITB}/parallel.tgz", {"xx": "parallel/IITB.en-hi.hi", "en": "parallel/IITB.en-hi.en"})],
                  valid=[Src("plain", f"{IITB}/dev_test.tgz", {"xx": "dev_test/dev.hi", "en": "dev_test/dev.en"})],
                  test=[Src("plain", f"{IITB}/dev_test.tgz", {"xx": "dev_test/test.hi", "en": "dev_test/test.en"})]),
    "my_MM": Plan(**{s: [Src("plain", WAT_MY, {"xx": f"wat2020.my-en/alt/{f}.alt.my", "en": f"wat2020.my-en/alt/{f}.alt.en"})]
                     for s, f in (("train", "train"), ("valid", "dev"), ("test", "test"))}),
    "ml_IN": _lotus("ml"), "ur_PK": _lotus("ur"), "te_IN": _lotus("te"),
    # IWSLT: test sets through sacrebleu; training archives from WIT3 (fairseq notes the URLs changed)
    "ar_AR": Plan(train=[Src("iwslt_train", f"{WIT3}/2017-01-trnted/texts/ar/en/ar-en.tgz", {"pair": "ar-en", "xx": "ar"})],
                  valid=[_sb("iwslt17/tst2016", "ar-en")], test=[_sb("iwslt17", "ar-en")]),
    "ko_KR": Plan(train=[Src("iwslt_train", f"{WIT3}/2017-01-trnted/texts/ko/en/ko-en.tgz", {"pair": "ko-en", "xx": "ko"})],
                  valid=[_sb("iwslt17/tst2016", "ko-en")], test=[_sb("iwslt17", "ko-en")]),
    "it_IT": Plan(unavailable="IWSLT17 multilingual (2017-01-trnmted) and tst2017.mltlng: WIT3 archive URLs changed "
                              "upstream and sacrebleu has no mltlng set; not automated"),
    "nl_XX": Plan(unavailable="IWSLT17 multilingual (2017-01-trnmted) and tst2017.mltlng: WIT3 archive URLs changed "
                              "upstream and sacrebleu has no mltlng set; not automated"),
    "vi_VN": Plan(unavailable="IWSLT15 (2015-01): WIT3 archive URLs changed upstream and sacrebleu does not cover "
                              "IWSLT15; not automated"),
    # WMT <= 19 (download_wmt19_and_before.py): dev/test through sacrebleu; europarl/SETIMES/wikititles/NC
    "es_XX": Plan(train=[Src("plain", "http://www.statmt.org/europarl/v7/es-en.tgz",
                             {"xx": "europarl-v7.es-en.es", "en": "europarl-v7.es-en.en"})],
                  valid=[_sb("wmt12", "en-es")], test=[_sb("wmt13", "en-es")], not_automated=[WMT_REST]),
    "fr_XX": Plan(train=[Src("plain", "http://www.statmt.org/europarl/v7/fr-en.tgz",
                             {"xx": "europarl-v7.fr-en.fr", "en": "europarl-v7.fr-en.en"})],
                  valid=[_sb("wmt13", "en-fr")], test=[_sb("wmt14/full", "en-fr")], not_automated=[WMT_REST]),
    "ro_RO": Plan(train=[_tmx("SETIMES/v2", "en-ro", "ro")],
                  valid=[_sb("wmt16/dev", "en-ro")], test=[_sb("wmt16", "en-ro")], not_automated=["europarl v8"]),
    "tr_TR": Plan(train=[_tmx("SETIMES/v2", "en-tr", "tr")],
                  valid=[_sb("wmt17/dev", "en-tr"), _sb("wmt16", "en-tr")], test=[_sb("wmt17", "en-tr")]),
    "lv_LV": Plan(valid=[_sb("wmt17/dev", "en-lv")], test=[_sb("wmt17", "en-lv")],
                  not_automated=["europarl v8, rapid2016, leta, dcep, books (training)"]),
    "fi_FI": Plan(valid=[_sb("wmt17/dev", "en-fi"), _sb("wmt16", "en-fi")], test=[_sb("wmt17", "en-fi")],
                  not_automated=["europarl v8, wiki-titles, rapid2016 (training)"]),
    "et_EE": Plan(valid=[_sb("wmt18/dev", "en-et")], test=[_sb("wmt18", "en-et")],
                  not_automated=["europarl v8, paracrawl r1, rapid2016 (training)"]),
    "gu_IN": Plan(train=[_tsv("http://data.statmt.org/wikititles/v1/wikititles-v1.gu-en.tsv.gz", 0)],
                  valid=[_sb("wmt19/dev", "gu-en")], test=[_sb("wmt19", "gu-en")]),
    "kk_KZ": Plan(train=[_tsv("http://data.statmt.org/news-commentary/v14/training/news-commentary-v14.en-kk.tsv.gz", 1),
                         _tsv("http://data.statmt.org/wikititles/v1/wikititles-v1.kk-en.tsv.gz", 0)],
                  valid=[_sb("wmt19/dev", "kk-en")], test=[_sb("wmt19", "kk-en")]),
    "lt_LT": Plan(train=[_tsv("http://www.statmt.org/europarl/v9/training/europarl-v9.lt-en.tsv.gz", 0),
                         _tsv("http://data.statmt.org/wikititles/v1/wikititles-v1.lt-en.tsv.gz", 0)],
                  valid=[_sb("wmt19/dev", "lt-en")], test=[_sb("wmt19", "lt-en")],
                  not_automated=["paracrawl r3, rapid2016 (training)"]),
    # WMT20 script
    "de_DE": Plan(train=[_tsv("http://www.statmt.org/europarl/v10/training/europarl-v10.de-en.tsv.gz", 0),
                         _tsv("http://data.statmt.org/news-commentary/v15/training/news-commentary-v15.de-en.tsv.gz", 0),
                         _tsv("http://data.statmt.org/wikititles/v2/wikititles-v2.de-en.tsv.gz", 0)],
                  valid=[_sb("wmt18", "de-en")], test=[_sb("wmt19", "de-en")],
                  not_automated=["ParaCrawl 5.1, CommonCrawl, RAPID 2019, WikiMatrix"]),
    "ru_RU": Plan(train=[_tsv("http://data.statmt.org/news-commentary/v15/training/news-commentary-v15.en-ru.tsv.gz", 1),
                         _tsv("http://data.statmt.org/wikititles/v2/wikititles-v2.ru-en.tsv.gz", 0)],
                  valid=[_sb("wmt18", "ru-en")], test=[_sb("wmt19", "ru-en")],
                  manual=[("wmt19_1mcorpus.zip", "Yandex 1M corpus: accept the licence at "
                                                 "https://translate.yandex.ru/corpus and save the zip here")],
                  not_automated=["ParaCrawl r1, CommonCrawl, UN v1.0, WikiMatrix"]),
    "zh_CN": Plan(train=[_tsv("http://data.statmt.org/news-commentary/v15/training/news-commentary-v15.en-zh.tsv.gz", 1),
                         _tsv("http://data.statmt.org/wikititles/v2/wikititles-v2.zh-en.tsv.gz", 0)],
                  valid=[_sb("wmt18", "zh-en")], test=[_sb("wmt19", "zh-en")],
                  manual=[("cwmt", "CWMT/CCMT corpora (casict2011, casict2015, datum2015, datum2017, neu2017): "
                                   "register at http://nlp.nju.edu.cn/cwmt-wmt and unpack them into this folder")],
                  not_automated=["UN v1.0, WikiMatrix"]),
    "cs_CZ": Plan(valid=[_sb("wmt18", "cs-en")], test=[_sb("wmt19", "cs-en")],
                  manual=[("czeng20-train", "CzEng 2.0: register at https://ufal.mff.cuni.cz/czeng and place "
                                            "czeng20-train here (the only training source of cs_CZ in ML50)")]),
    "ja_XX": Plan(train=[_tsv("http://data.statmt.org/news-commentary/v15/training/news-commentary-v15.en-ja.tsv.gz", 1),
                         _tsv("http://data.statmt.org/wikititles/v2/wikititles-v2.ja-en.tsv.gz", 0)],
                  halves=_sb("wmt20/dev", "ja-en"),
                  not_automated=["JParaCrawl 2.0, WikiMatrix, JESC, KFTT, TED (2017-01-trnted)"]),
    "ta_IN": Plan(train=[_tsv("http://data.statmt.org/wikititles/v2/wikititles-v2.ta-en.tsv.gz", 0)],
                  halves=_sb("wmt20/dev", "ta-en"),
                  not_automated=["WikiMatrix, PMIndia, Tanzil, PIB, MKB, UFAL EnTam v2, NLPC-UoM"]),
    "pl_PL": Plan(halves=_sb("wmt20/dev", "pl-en"), not_automated=["Tilde RAPID 2019 (training)"]),
    "km_KH": Plan(unavailable="WMT20 ps-km (paracrawl sent + OPUS km-parallel, Flores v1 km/ps dev/devtest): "
                              "not automated"),
    "ps_AF": Plan(unavailable="WMT20 ps-km (paracrawl sent + OPUS ps-parallel, Flores v1 km/ps dev/devtest): "
                              "not automated"),
    "sw_KE": Plan(unavailable="fairseq's ML50 data scripts have no download script for sw_KE"),
    "tl_XX": Plan(unavailable="fairseq's ML50 data scripts have no download script for tl_XX "
                              "(only a commented skip_langs entry in remove_valid_test_in_train.py)"),
}
for _code, _ted_col in (("bn_IN", "bn"), ("he_IL", "he"), ("fa_IR", "fa"), ("id_ID", "id"), ("sv_SE", "sv"),
                        ("pt_XX", "pt"), ("ka_GE", "ka"), ("th_TH", "th"), ("mr_IN", "mr"), ("hr_HR", "hr"),
                        ("uk_UA", "uk"), ("az_AZ", "az"), ("mk_MK", "mk"), ("gl_ES", "gl"), ("sl_SI", "sl"),
                        ("mn_MN", "mn")):
    PLANS[_code] = _ted(_ted_col)
