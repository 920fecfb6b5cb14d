"""Plain line-aligned parallel text (OPUS moses zips, Flores v1 / WAT-ALT / Lotus / IITB archives)."""
from __future__ import annotations

import os
from collections.abc import Iterator

from data_prep.sources.archive import iter_text_lines, open_member
from mtkit.errors import InputError


def read_parallel(archive: str | os.PathLike, src_member: str | None, tgt_member: str | None,
                  src_archive: str | os.PathLike | None = None) -> Iterator[tuple[str, str]]:
    """Pairs from two aligned members (of one archive, or ``src_archive`` for the source side)."""
    sa = src_archive or archive
    with open_member(sa, src_member) as fs, open_member(archive, tgt_member) as ft:
        wa, wb = f"{sa}::{src_member}", f"{archive}::{tgt_member}"
        a, b = iter_text_lines(fs, wa), iter_text_lines(ft, wb)
        n = 0
        for x in a:
            y = next(b, None)
            if y is None:
                raise InputError(f"{wb} has {n} lines but {wa} has more: the two sides are not aligned")
            n += 1
            yield x, y
        if next(b, None) is not None:
            raise InputError(f"{wa} has {n} lines but {wb} has more: the two sides are not aligned")
