"""Language identification for the filter step: which language is a line in?

Engines (``FilterSettings.lid``):
- ``pycld2``: Chromium's CLD2 (a C++ library whose model is compiled into the PyPI wheel): offline,
  fast, covers every ML50 language. The default choice (accuracy and speed measured in
  ``benchmarks/data_prep_speed/lid.py``, results in ``benchmarks/data_prep_speed/results_lid.json``).
- ``langid``: langid.py (model inside the wheel, pure Python + numpy): offline, slower.
- ``fasttext:PATH``: a fastText model such as ``lid.176.bin`` (needs ``pip install fasttext`` and
  the model file).

Every engine answers with ISO 639-1 codes, or ``None`` when it cannot tell (unreliable, a language
it does not know). The filter drops a pair only when a side of at least ``min_chars`` characters is
identified as another language: shorter and undecided sides are kept, since UI strings and titles
are often too short to tell (on the gettext test sides, judging every line would drop correct
pairs mostly through short lines and close languages: see results_lid.json).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Protocol

from mtkit.errors import InputError

log = logging.getLogger(__name__)

#: detectors' own codes that differ from the ISO 639-1 part of the mBART code
_ALIASES = {"iw": "he", "jw": "jv", "zh-Hant": "zh", "fil": "tl"}


def iso_code(mbart_code: str) -> str:
    """ISO 639-1 code of an mBART code (``fr_XX`` -> ``fr``)."""
    return mbart_code.split("_")[0]


class LanguageId(Protocol):
    name: str

    def languages(self) -> set[str]:
        """ISO 639-1 codes this engine can answer."""

    def predict(self, texts: Sequence[str]) -> list[str | None]:
        """The language of each text, or None when undecided."""


class Cld2:
    name = "pycld2"

    def __init__(self) -> None:
        import pycld2

        self._cld2 = pycld2
        self._langs = {_ALIASES.get(code, code) for _, code in pycld2.LANGUAGES}

    def languages(self) -> set[str]:
        return self._langs

    def predict(self, texts: Sequence[str]) -> list[str | None]:
        out: list[str | None] = []
        for t in texts:
            try:
                reliable, _, details = self._cld2.detect(t)
            except self._cld2.error:  # e.g. text CLD2 considers invalid UTF-8 after its own checks
                out.append(None)
                continue
            code = details[0][1]
            out.append(_ALIASES.get(code, code) if reliable and code != "un" else None)
        return out


class LangId:
    name = "langid"

    def __init__(self) -> None:
        from langid.langid import LanguageIdentifier, model

        self._ident = LanguageIdentifier.from_modelstring(model, norm_probs=True)
        self._langs = set(self._ident.nb_classes)

    def languages(self) -> set[str]:
        return self._langs

    def predict(self, texts: Sequence[str], min_prob: float = 0.5) -> list[str | None]:
        out: list[str | None] = []
        for t in texts:
            code, p = self._ident.classify(t)
            out.append(code if p >= min_prob else None)
        return out


class FastText:
    def __init__(self, path: str, min_prob: float = 0.5) -> None:
        try:
            import fasttext  # type: ignore[import-not-found]
        except ImportError:
            raise InputError("--lid fasttext:PATH needs the fasttext package (pip install fasttext)") from None
        if not os.path.exists(path):
            raise InputError(f"{path}: fastText LID model not found (download lid.176.bin or give another path)")
        self.name = f"fasttext:{path}"
        self._model = fasttext.load_model(path)
        self._min_prob = min_prob
        self._langs = {label.replace("__label__", "") for label in self._model.get_labels()}

    def languages(self) -> set[str]:
        return self._langs

    def predict(self, texts: Sequence[str]) -> list[str | None]:
        labels, probs = self._model.predict([t.replace("\n", " ") for t in texts])
        return [lab[0].replace("__label__", "") if p[0] >= self._min_prob else None for lab, p in zip(labels, probs)]


ENGINES = {"pycld2": Cld2, "langid": LangId}
_CACHE: dict[str, LanguageId] = {}


def load(spec: str) -> LanguageId:
    """The engine ``spec`` names: ``pycld2``, ``langid`` or ``fasttext:PATH`` (loaded once per process)."""
    if spec not in _CACHE:
        if spec.startswith("fasttext:"):
            _CACHE[spec] = FastText(spec.split(":", 1)[1])
        elif spec in ENGINES:
            try:
                _CACHE[spec] = ENGINES[spec]()
            except ImportError:
                raise InputError(f"--lid {spec}: the {spec} package is not installed (pip install {spec})") from None
        else:
            raise InputError(f"--lid {spec!r}: choose pycld2, langid or fasttext:PATH")
    return _CACHE[spec]


DEFAULT_MIN_CHARS = 25


class PairChecker:
    """Drops a pair when a side of ``min_chars`` or more is identified as another language than its direction's."""

    def __init__(self, engine: LanguageId, src_lang: str, tgt_lang: str, min_chars: int = DEFAULT_MIN_CHARS):
        self.engine, self.min_chars = engine, min_chars
        self.want = (iso_code(src_lang), iso_code(tgt_lang))
        known = engine.languages()
        self.check = tuple(w in known for w in self.want)
        for w, ok in zip(self.want, self.check):
            if not ok:
                log.warning("LID: %s does not know %r; that side is not checked", engine.name, w)

    def ok(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        keep = [True] * len(pairs)
        for side in (0, 1):
            if not self.check[side]:
                continue
            judged = [i for i, p in enumerate(pairs) if len(p[side]) >= self.min_chars]
            got = self.engine.predict([pairs[i][side] for i in judged])
            for i, g in zip(judged, got):
                if g is not None and g != self.want[side]:
                    keep[i] = False
        return keep
