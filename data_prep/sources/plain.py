"""Plain line-aligned parallel text (OPUS moses zips, Flores v1 / WAT-ALT / Lotus / IITB / WMT20 ps-km archives)."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator

from data_prep.sources.archive import iter_text_lines, list_members, open_member
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


def _natural_key(name: str) -> list:
    """Sort key like ``sort -V``: digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def read_parallel_dir(archive: str | os.PathLike, folder: str, xx: str, en: str = "en") -> Iterator[tuple[str, str]]:
    """(xx, en) pairs of every ``folder/NAME.{xx}`` + ``folder/NAME.{en}`` pair of files in an archive.

    fairseq's download_wmt20.sh concatenates ``find folder -maxdepth 1 -name '*.xx' | sort -V`` and the
    same for English (WMT20 km-parallel / ps-parallel); here each corpus is paired with its own English
    file, in the same natural order, and a corpus without its English file is an error, not a shift.
    """
    names = set(list_members(archive))
    prefix = folder.rstrip("/") + "/"
    stems = sorted((n[: -len(xx) - 1] for n in names if n.startswith(prefix) and "/" not in n[len(prefix):]
                    and n.endswith("." + xx)), key=_natural_key)
    if not stems:
        raise InputError(f"{archive}: no {prefix}*.{xx} files (has: {sorted(names)[:8]} ...)")
    for stem in stems:
        if f"{stem}.{en}" not in names:
            raise InputError(f"{archive}: {stem}.{xx} has no {stem}.{en}: the two sides are not aligned")
        yield from read_parallel(archive, f"{stem}.{xx}", f"{stem}.{en}")
