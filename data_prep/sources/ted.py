"""TED talks multi-way TSV ("TED58", ``all_talks_{train,dev,test}.tsv``; columns are language codes).

Rows where either side is missing (``__NULL__`` / ``_ _ NULL _ _``) or empty are skipped, as fairseq's
download_ted_and_extract.py does. The text is Moses-tokenised; it is detokenised with sacremoses when
installed (fairseq runs Moses' detokenizer.perl), else left tokenised with a warning.
"""
from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterator

from data_prep.sources.archive import open_member
from mtkit.errors import InputError

log = logging.getLogger(__name__)
_WARNED = set()


def _detok(lang: str):
    try:
        from sacremoses import MosesDetokenizer  # type: ignore[import-not-found]
    except ImportError:
        if "x" not in _WARNED:
            log.warning("sacremoses is not installed: TED text stays Moses-tokenised (pip install sacremoses)")
            _WARNED.add("x")
        return lambda s: s
    md = MosesDetokenizer(lang=lang[:2])
    return lambda s: md.detokenize(s.split())


def read_ted(archive: str | os.PathLike, member: str, src: str, tgt: str) -> Iterator[tuple[str, str]]:
    """(src, tgt) pairs of one split file; ``src``/``tgt`` are TED column names (e.g. 'en', 'bn')."""
    with open_member(archive, member) as f:
        reader = csv.DictReader(io.TextIOWrapper(f, encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames is None or src not in reader.fieldnames or tgt not in reader.fieldnames:
            raise InputError(f"{archive}::{member}: no column {src!r} or {tgt!r} (has {reader.fieldnames})")
        ds, dt = _detok(src), _detok(tgt)
        for row in reader:
            a, b = (row.get(src) or "").strip(), (row.get(tgt) or "").strip()
            if not a or not b or "NULL" in a.replace(" ", "") or "NULL" in b.replace(" ", ""):
                continue
            yield ds(a), dt(b)
