"""Per-pair filters: overlap with held-out sets, empty sides, length, length ratio, optional language ID.

Every drop is counted by reason; nothing is ever re-aligned.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass

from data_prep.steps import lid as language_id
from mtkit.io import LineError, atomic_write, read_pairs, text_hash

log = logging.getLogger(__name__)


@dataclass
class FilterSettings:
    min_chars: int = 1
    max_chars: int = 1000
    max_words: int = 250
    max_ratio: float = 3.0  # longer side / shorter side, in characters
    ratio_min_chars: int = 10  # the ratio test applies only when the longer side has this many chars
    lid: str | None = None  # language-ID engine: "pycld2", "langid" or "fasttext:PATH" (see steps.lid)
    lid_min_chars: int = language_id.DEFAULT_MIN_CHARS  # shorter sides are not judged by language ID


LID_BATCH = 1024


def drop_reason(a: str, b: str, s: FilterSettings, heldout: set[int] | None) -> str | None:
    """Why a (stripped) pair is dropped by the rule-based filters, or None to keep it."""
    la, lb = len(a), len(b)
    if heldout is not None and (text_hash(a) in heldout or text_hash(b) in heldout):
        return "drop_overlap"
    if not a or not b:
        return "drop_empty"
    if min(la, lb) < s.min_chars or max(la, lb) > s.max_chars:
        return "drop_length"
    if len(a.split()) > s.max_words or len(b.split()) > s.max_words:
        return "drop_length"
    if max(la, lb) >= s.ratio_min_chars and max(la, lb) > s.max_ratio * min(la, lb):
        return "drop_ratio"
    return None


def filter_pairs(src_in: str | os.PathLike, tgt_in: str | os.PathLike, src_out: str | os.PathLike,
                 tgt_out: str | os.PathLike, src_lang: str, tgt_lang: str, s: FilterSettings,
                 heldout: set[int] | None = None) -> Counter:
    """Stream one pair of files through overlap removal (when ``heldout`` is given) and the filters.

    Pairs that pass the rules are checked by language ID (when ``s.lid`` is set) in batches; the
    order of the kept pairs is the input order.
    """
    c: Counter = Counter()
    checker = language_id.PairChecker(language_id.load(s.lid), src_lang, tgt_lang, s.lid_min_chars) if s.lid else None
    pending: list[tuple[str, str]] = []
    with atomic_write(src_out) as fs, atomic_write(tgt_out) as ft:

        def flush() -> None:
            keep = checker.ok(pending) if checker else [True] * len(pending)
            for (a, b), k in zip(pending, keep):
                if k:
                    fs.write(a + "\n")
                    ft.write(b + "\n")
            c["out"] += sum(keep)
            c["drop_lid"] += len(keep) - sum(keep)
            pending.clear()

        for a, b in read_pairs(src_in, tgt_in, lenient=True):
            c["in"] += 1
            if isinstance(a, LineError) or isinstance(b, LineError):
                c["drop_bad_line"] += 1
                continue
            a, b = a.strip(), b.strip()
            reason = drop_reason(a, b, s, heldout)
            if reason:
                c[reason] += 1
                continue
            pending.append((a, b))
            if len(pending) >= LID_BATCH:
                flush()
        flush()
    if c["drop_lid"] == 0:
        c.pop("drop_lid")
    return c
