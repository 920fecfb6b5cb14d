"""Language codes: the ML50 list (mBART-50 order), Flores-200 codes and the mapping between them.

The ML50 order is not cosmetic: fairseq's multilingual tasks assign language-token ids in the
order of ``--lang-dict``/``--langs``, so a checkpoint is only usable with the list it was trained
with. The list below is fairseq's ``examples/multilingual/ML50_langs.txt`` (52 codes), which is also
the order of the released mBART-50 models.
"""
from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Iterable, Sequence

from mtkit.errors import InputError

logger = logging.getLogger(__name__)

#: ML50 languages in the official order (lines 1-25: mBART-25, 26-50: the extension, then gl, sl).
ML50_LANGS: tuple[str, ...] = (
    "ar_AR", "cs_CZ", "de_DE", "en_XX", "es_XX", "et_EE", "fi_FI", "fr_XX", "gu_IN", "hi_IN",
    "it_IT", "ja_XX", "kk_KZ", "ko_KR", "lt_LT", "lv_LV", "my_MM", "ne_NP", "nl_XX", "ro_RO",
    "ru_RU", "si_LK", "tr_TR", "vi_VN", "zh_CN",
    "af_ZA", "az_AZ", "bn_IN", "fa_IR", "he_IL", "hr_HR", "id_ID", "ka_GE", "km_KH", "mk_MK",
    "ml_IN", "mn_MN", "mr_IN", "pl_PL", "ps_AF", "pt_XX", "sv_SE", "sw_KE", "ta_IN", "te_IN",
    "th_TH", "tl_XX", "uk_UA", "ur_PK", "xh_ZA",
    "gl_ES", "sl_SI",
)

#: The 25 languages of mBART-25 (the first 25 of ML50).
MBART25_LANGS: tuple[str, ...] = ML50_LANGS[:25]

#: mBART code -> Flores-200 code for every ML50 language.
MBART_TO_FLORES: dict[str, str] = {
    "ar_AR": "arb_Arab", "cs_CZ": "ces_Latn", "de_DE": "deu_Latn", "en_XX": "eng_Latn",
    "es_XX": "spa_Latn", "et_EE": "est_Latn", "fi_FI": "fin_Latn", "fr_XX": "fra_Latn",
    "gu_IN": "guj_Gujr", "hi_IN": "hin_Deva", "it_IT": "ita_Latn", "ja_XX": "jpn_Jpan",
    "kk_KZ": "kaz_Cyrl", "ko_KR": "kor_Hang", "lt_LT": "lit_Latn", "lv_LV": "lvs_Latn",
    "my_MM": "mya_Mymr", "ne_NP": "npi_Deva", "nl_XX": "nld_Latn", "ro_RO": "ron_Latn",
    "ru_RU": "rus_Cyrl", "si_LK": "sin_Sinh", "tr_TR": "tur_Latn", "vi_VN": "vie_Latn",
    "zh_CN": "zho_Hans", "af_ZA": "afr_Latn", "az_AZ": "azj_Latn", "bn_IN": "ben_Beng",
    "fa_IR": "pes_Arab", "he_IL": "heb_Hebr", "hr_HR": "hrv_Latn", "id_ID": "ind_Latn",
    "ka_GE": "kat_Geor", "km_KH": "khm_Khmr", "mk_MK": "mkd_Cyrl", "ml_IN": "mal_Mlym",
    "mn_MN": "khk_Cyrl", "mr_IN": "mar_Deva", "pl_PL": "pol_Latn", "ps_AF": "pbt_Arab",
    "pt_XX": "por_Latn", "sv_SE": "swe_Latn", "sw_KE": "swh_Latn", "ta_IN": "tam_Taml",
    "te_IN": "tel_Telu", "th_TH": "tha_Thai", "tl_XX": "tgl_Latn", "uk_UA": "ukr_Cyrl",
    "ur_PK": "urd_Arab", "xh_ZA": "xho_Latn", "gl_ES": "glg_Latn", "sl_SI": "slv_Latn",
}
FLORES_TO_MBART: dict[str, str] = {v: k for k, v in MBART_TO_FLORES.items()}

#: Flores-200 codes (the NLLB-200 language list, plus arb_Latn and min_Arab from the Flores table).
FLORES200_LANGS: tuple[str, ...] = tuple(
    """
    ace_Arab ace_Latn acm_Arab acq_Arab aeb_Arab afr_Latn ajp_Arab aka_Latn amh_Ethi apc_Arab
    arb_Arab arb_Latn ars_Arab ary_Arab arz_Arab asm_Beng ast_Latn awa_Deva ayr_Latn azb_Arab
    azj_Latn bak_Cyrl bam_Latn ban_Latn bel_Cyrl bem_Latn ben_Beng bho_Deva bjn_Arab bjn_Latn
    bod_Tibt bos_Latn bug_Latn bul_Cyrl cat_Latn ceb_Latn ces_Latn cjk_Latn ckb_Arab crh_Latn
    cym_Latn dan_Latn deu_Latn dik_Latn dyu_Latn dzo_Tibt ell_Grek eng_Latn epo_Latn est_Latn
    eus_Latn ewe_Latn fao_Latn pes_Arab fij_Latn fin_Latn fon_Latn fra_Latn fur_Latn fuv_Latn
    gla_Latn gle_Latn glg_Latn grn_Latn guj_Gujr hat_Latn hau_Latn heb_Hebr hin_Deva hne_Deva
    hrv_Latn hun_Latn hye_Armn ibo_Latn ilo_Latn ind_Latn isl_Latn ita_Latn jav_Latn jpn_Jpan
    kab_Latn kac_Latn kam_Latn kan_Knda kas_Arab kas_Deva kat_Geor knc_Arab knc_Latn kaz_Cyrl
    kbp_Latn kea_Latn khm_Khmr kik_Latn kin_Latn kir_Cyrl kmb_Latn kon_Latn kor_Hang kmr_Latn
    lao_Laoo lvs_Latn lij_Latn lim_Latn lin_Latn lit_Latn lmo_Latn ltg_Latn ltz_Latn lua_Latn
    lug_Latn luo_Latn lus_Latn mag_Deva mai_Deva mal_Mlym mar_Deva min_Arab min_Latn mkd_Cyrl
    plt_Latn mlt_Latn mni_Beng khk_Cyrl mos_Latn mri_Latn zsm_Latn mya_Mymr nld_Latn nno_Latn
    nob_Latn npi_Deva nso_Latn nus_Latn nya_Latn oci_Latn gaz_Latn ory_Orya pag_Latn pan_Guru
    pap_Latn pol_Latn por_Latn prs_Arab pbt_Arab quy_Latn ron_Latn run_Latn rus_Cyrl sag_Latn
    san_Deva sat_Beng scn_Latn shn_Mymr sin_Sinh slk_Latn slv_Latn smo_Latn sna_Latn snd_Arab
    som_Latn sot_Latn spa_Latn als_Latn srd_Latn srp_Cyrl ssw_Latn sun_Latn swe_Latn swh_Latn
    szl_Latn tam_Taml tat_Cyrl tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi taq_Latn taq_Tfng
    tpi_Latn tsn_Latn tso_Latn tuk_Latn tum_Latn tur_Latn twi_Latn tzm_Tfng uig_Arab ukr_Cyrl
    umb_Latn urd_Arab uzn_Latn vec_Latn vie_Latn war_Latn wol_Latn xho_Latn ydd_Hebr yor_Latn
    yue_Hant zho_Hans zho_Hant zul_Latn
    """.split()
)
_FLORES_SET = frozenset(FLORES200_LANGS)
_ML50_SET = frozenset(ML50_LANGS)


class UnknownLanguageError(InputError):
    """A language code that is neither an ML50 (mBART) code nor a Flores-200 code."""


def _suggest(code: str, n: int = 3) -> list[str]:
    """Closest valid codes: same language part first ("fr_FR" -> fr_XX), then spelling neighbours."""
    pool = list(ML50_LANGS) + list(FLORES200_LANGS)
    lowered = {c.lower(): c for c in pool}
    prefix = code.lower().split("_")[0]
    hits = [c.lower() for c in pool if c.lower().split("_")[0] == prefix]
    hits += difflib.get_close_matches(code.lower(), list(lowered), n=n, cutoff=0.5)
    seen: list[str] = []
    for h in hits:
        if lowered[h] not in seen:
            seen.append(lowered[h])
    return seen[:n]


def unknown_language(code: str, allowed: Iterable[str] | None = None) -> UnknownLanguageError:
    """Build the error for an unknown code, with the closest valid codes as suggestions."""
    if allowed is not None:
        allowed = list(allowed)
        close = difflib.get_close_matches(code, allowed, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return UnknownLanguageError(
            f"unknown language code {code!r}.{hint} Valid codes here: {' '.join(allowed)}"
        )
    close = _suggest(code)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return UnknownLanguageError(
        f"unknown language code {code!r}: not an ML50 (mBART) code such as en_XX nor a "
        f"Flores-200 code such as eng_Latn.{hint}"
    )


def is_ml50(code: str) -> bool:
    return code in _ML50_SET


def is_flores(code: str) -> bool:
    return code in _FLORES_SET


def to_mbart(code: str) -> str:
    """Return the mBART (ML50) code for an mBART or Flores-200 code of an ML50 language."""
    if code in _ML50_SET:
        return code
    if code in FLORES_TO_MBART:
        return FLORES_TO_MBART[code]
    if code in _FLORES_SET:
        raise UnknownLanguageError(
            f"{code!r} is a Flores-200 code but not an ML50 language, so it has no mBART code"
        )
    raise unknown_language(code)


def to_flores(code: str) -> str:
    """Return the Flores-200 code for an mBART or Flores-200 code."""
    if code in _FLORES_SET:
        return code
    if code in MBART_TO_FLORES:
        return MBART_TO_FLORES[code]
    raise unknown_language(code)


def normalize(code: str, style: str = "mbart") -> str:
    """Accept either form and return the code in ``style`` ('mbart' or 'flores')."""
    if style == "mbart":
        return to_mbart(code)
    if style == "flores":
        return to_flores(code)
    raise ValueError(f"style must be 'mbart' or 'flores', not {style!r}")


def validate(code: str) -> str:
    """Return ``code`` unchanged if it is a known ML50 or Flores-200 code, else raise."""
    if code in _ML50_SET or code in _FLORES_SET:
        return code
    raise unknown_language(code)


_CODE_SHAPE = re.compile(r"^[a-z]{2,3}_[A-Za-z]{2,4}$")


def _code_or_new(code: str, style: str) -> str:
    """``code`` in ``style`` for ML50/Flores codes; a well-formed code of another language (e.g. ast_ES,
    ast_Latn: extending a model beyond ML50) is kept as written."""
    try:
        return normalize(code, style)
    except UnknownLanguageError:
        if _CODE_SHAPE.match(code):
            logger.info("%s is not an ML50 or Flores-200 language; it is kept as written", code)
            return code
        raise


def parse_lang_list(value: str | os.PathLike | Sequence[str], style: str = "mbart",
                    allow_other: bool = False) -> list[str]:
    """A language list from a file (one code a line, as fairseq's --lang-dict), a comma/space
    separated string, or a sequence, as ``style`` codes (either form accepted), in order.

    Duplicates are an error. ``allow_other`` keeps well-formed codes outside ML50/Flores-200 as
    written (for languages added to a model); otherwise they are unknown-language errors.
    """
    if not isinstance(value, (str, os.PathLike)):
        codes = list(value)
    elif os.path.isfile(value):
        codes = read_lang_file(str(value))
    else:
        codes = [c for c in str(value).replace(",", " ").split() if c]
    out = [_code_or_new(c, style) if allow_other else normalize(c, style) for c in codes]
    dups = sorted({c for c in out if out.count(c) > 1})
    if dups:
        raise InputError(f"language list {value!s} has duplicates: {' '.join(dups)}")
    return out


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``"en_XX-fr_XX,fr_XX-en_XX"`` (commas or spaces) -> [(src, tgt), ...], codes as written."""
    pairs = []
    for pair in text.replace(",", " ").split():
        if pair.count("-") != 1 or not all(pair.split("-")):
            raise InputError(f"language pair {pair!r} is not SRC-TGT (e.g. en_XX-fr_XX)")
        src, tgt = pair.split("-")
        pairs.append((src, tgt))
    return pairs


def read_lang_file(path: str) -> list[str]:
    """Read a language-list file (one code a line, blank lines ignored) as fairseq does."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def mbart_lang_token(code: str) -> str:
    """mBART style language token, as in the released mBART-50 dictionaries: ``[en_XX]``."""
    return f"[{code}]"


def multilingual_lang_token(code: str) -> str:
    """fairseq's default multilingual style (also NLLB): ``__en_XX__`` / ``__eng_Latn__``."""
    return f"__{code}__"
