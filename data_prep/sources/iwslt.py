"""IWSLT (WIT3): ``train.tags.{s}-{t}.{lang}`` training files and ``IWSLT*.xml`` dev/test files."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator

from data_prep.sources.archive import iter_text_lines, open_member
from data_prep.sources.wmt import read_sgm
from mtkit.errors import InputError

_KEEP_TAGS = re.compile(r"</?(title|description)>")


def read_train_tags(archive: str | os.PathLike, member: str, keep_titles: bool = True) -> list[str]:
    """Text lines of a WIT3 ``train.tags`` file, as fairseq's script extracts them.

    Metadata lines (``<url>``, ``<talkid>``, ``<keywords>``, ``<speaker>``, ``<reviewer``,
    ``<translator``, ``<doc``, ``</doc>``) are dropped; ``<title>``/``<description>`` lines are kept
    without their tags (download_iwslt_and_extract.sh), or dropped with every other tagged line when
    ``keep_titles`` is false (download_wmt20.sh's ja TED: ``grep -v "^[ ]*<"``).
    """
    out = []
    with open_member(archive, member) as f:
        for ln in iter_text_lines(f, f"{archive}::{member}"):
            s = ln.strip()
            if keep_titles and _KEEP_TAGS.match(s):
                out.append(_KEEP_TAGS.sub("", s).strip())
            elif not s.startswith("<"):
                out.append(s)
    return out


def read_train(archive, src_member: str, tgt_member: str, keep_titles: bool = True) -> Iterator[tuple[str, str]]:
    a, b = read_train_tags(archive, src_member, keep_titles), read_train_tags(archive, tgt_member, keep_titles)
    if len(a) != len(b):
        raise InputError(f"{archive}: {src_member} has {len(a)} text lines but {tgt_member} has {len(b)}")
    yield from zip(a, b)


def read_xml_pair(archive, src_member: str, ref_member: str) -> Iterator[tuple[str, str]]:
    """The ``<seg id=..>`` lines of an IWSLT dev/test pair (same structure as WMT SGML).

    As fairseq's ``convert_valid_test``, a right single quote (U+2019) becomes an ASCII apostrophe.
    """
    a, b = read_sgm(archive, src_member), read_sgm(archive, ref_member)
    if len(a) != len(b):
        raise InputError(f"{archive}: {src_member} has {len(a)} segments but {ref_member} has {len(b)}")
    for x, y in zip(a, b):
        yield x.replace("\u2019", "'"), y.replace("\u2019", "'")
