import pytest

from mtkit import langs


def test_ml50_list_is_the_official_52_in_order():
    assert len(langs.ML50_LANGS) == 52
    assert len(set(langs.ML50_LANGS)) == 52
    # mBART-25 block first, then the 25 added languages, then gl_ES, sl_SI
    assert langs.ML50_LANGS[:4] == ("ar_AR", "cs_CZ", "de_DE", "en_XX")
    assert langs.ML50_LANGS[24] == "zh_CN"
    assert langs.ML50_LANGS[25] == "af_ZA"
    assert langs.ML50_LANGS[-3:] == ("xh_ZA", "gl_ES", "sl_SI")
    assert langs.MBART25_LANGS == langs.ML50_LANGS[:25]


def test_every_ml50_language_maps_to_a_flores_code_and_back():
    assert set(langs.MBART_TO_FLORES) == set(langs.ML50_LANGS)
    for m, f in langs.MBART_TO_FLORES.items():
        assert langs.is_flores(f), f
        assert langs.to_mbart(f) == m
        assert langs.to_flores(m) == f
    assert len(set(langs.MBART_TO_FLORES.values())) == 52


def test_flores_list_has_the_200_plus_codes():
    assert len(langs.FLORES200_LANGS) == 204
    assert len(set(langs.FLORES200_LANGS)) == 204
    assert {"eng_Latn", "zho_Hans", "zho_Hant", "arb_Latn", "min_Arab"} <= set(langs.FLORES200_LANGS)


def test_normalize_accepts_either_form():
    assert langs.normalize("eng_Latn") == "en_XX"
    assert langs.normalize("si_LK", "flores") == "sin_Sinh"
    assert langs.parse_lang_list("fr_XX, sin_Sinh swh_Latn") == ["fr_XX", "si_LK", "sw_KE"]


def test_unknown_codes_get_suggestions():
    with pytest.raises(langs.UnknownLanguageError) as e:
        langs.to_mbart("fr_FR")
    assert "fr_XX" in str(e.value)
    with pytest.raises(langs.UnknownLanguageError) as e:
        langs.to_flores("fra_Latm")
    assert "fra_Latn" in str(e.value)
    with pytest.raises(langs.UnknownLanguageError) as e:
        langs.to_mbart("zul_Latn")  # a Flores language outside ML50 has no mBART code
    assert "not an ML50 language" in str(e.value)


def test_language_tokens():
    assert langs.mbart_lang_token("en_XX") == "[en_XX]"
    assert langs.multilingual_lang_token("eng_Latn") == "__eng_Latn__"
