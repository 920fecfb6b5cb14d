"""Per-pair filters: overlap with held-out sets, empty sides, length, length ratio, optional fastText language ID.

Every drop is counted by reason; nothing is ever re-aligned.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass

from data_prep.common import LineError, atomic_open, read_pairs, text_hash

log = logging.getLogger(__name__)


@dataclass
class FilterSettings:
    min_chars: int = 1
    max_chars: int = 1000
    max_words: int = 250
    max_ratio: float = 3.0  # longer side / shorter side, in characters
    ratio_min_chars: int = 10  # the ratio test applies only when the longer side has this many chars
    lid_model: str | None = None  # fastText LID model path (e.g. lid.176.bin)
    lid_threshold: float = 0.0


_LID_CACHE: dict[str, object] = {}


def load_lid(path: str | None):
    """The fastText model, or None (with a message) when no path is given or fasttext is missing."""
    if not path:
        return None
    if path in _LID_CACHE:
        return _LID_CACHE[path]
    try:
        import fasttext  # type: ignore[import-not-found]
    except ImportError:
        log.warning("LID filter skipped: the fasttext package is not installed (pip install fasttext)")
        _LID_CACHE[path] = None
        return None
    if not os.path.exists(path):
        from mtkit.errors import InputError

        raise InputError(f"{path}: fastText LID model not found (download lid.176.bin or give another path)")
    model = fasttext.load_model(path)
    _LID_CACHE[path] = model
    return model


def lid_code(mbart_code: str) -> str:
    """fastText lid.176 label for an mBART code (the ISO 639-1 part)."""
    return mbart_code.split("_")[0]


def filter_pairs(src_in: str | os.PathLike, tgt_in: str | os.PathLike, src_out: str | os.PathLike,
                 tgt_out: str | os.PathLike, src_lang: str, tgt_lang: str, s: FilterSettings,
                 heldout: set[int] | None = None, progress=None) -> Counter:
    """Stream one pair of files through overlap removal (when ``heldout`` is given) and the filters."""
    c: Counter = Counter()
    lid = load_lid(s.lid_model)
    if s.lid_model and lid is None:
        c["lid_skipped"] = 1
    want = (lid_code(src_lang), lid_code(tgt_lang))
    with atomic_open(src_out) as fs, atomic_open(tgt_out) as ft:
        for a, b in read_pairs(src_in, tgt_in, lenient=True):
            c["in"] += 1
            if progress is not None:
                progress.update()
            if isinstance(a, LineError) or isinstance(b, LineError):
                c["drop_bad_line"] += 1
                continue
            a, b = a.strip(), b.strip()
            la, lb = len(a), len(b)
            if heldout is not None and (text_hash(a) in heldout or text_hash(b) in heldout):
                c["drop_overlap"] += 1
            elif not a or not b:
                c["drop_empty"] += 1
            elif min(la, lb) < s.min_chars or max(la, lb) > s.max_chars:
                c["drop_length"] += 1
            elif len(a.split()) > s.max_words or len(b.split()) > s.max_words:
                c["drop_length"] += 1
            elif max(la, lb) >= s.ratio_min_chars and max(la, lb) > s.max_ratio * min(la, lb):
                c["drop_ratio"] += 1
            elif lid is not None and not _lid_ok(lid, (a, b), want, s.lid_threshold):
                c["drop_lid"] += 1
            else:
                fs.write(a + "\n")
                ft.write(b + "\n")
                c["out"] += 1
    return c


def _lid_ok(model, texts: tuple[str, str], want: tuple[str, str], threshold: float) -> bool:
    labels, probs = model.predict(list(texts))
    for lab, p, w in zip(labels, probs, want):
        if lab[0] != f"__label__{w}" or p[0] < threshold:
            return False
    return True
