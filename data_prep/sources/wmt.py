"""WMT formats: SGML segments (``<seg id=..>``, also IWSLT's dev/test XML), TSV and RAPID XLIFF training files."""
from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator

from data_prep.sources.archive import iter_text_lines, open_member

_SEG = re.compile(r"<seg[^>]*>(.*?)</seg>", re.I)


def read_sgm(archive: str | os.PathLike, member: str | None = None) -> list[str]:
    """Segments of an SGML file, in order (entities unescaped)."""
    out = []
    with open_member(archive, member) as f:
        for line in iter_text_lines(f, f"{archive}::{member}"):
            for m in _SEG.finditer(line):
                out.append(html.unescape(m.group(1)).strip())
    return out


def read_tsv(archive, member: str | None = None, src_col: int = 0, tgt_col: int = 1,
             sep: str = "\t") -> Iterator[tuple[str, str]]:
    """Column-separated training data (news-commentary, wikititles, paracrawl, WikiMatrix, and the
    WMT15 ``|||``-separated wiki titles); short rows are skipped; ``sep`` other than a tab also
    squeezes inner whitespace (fairseq: ``sed 's/|||/\\t/g' | cut | awk '{$1=$1};1'``)."""
    with open_member(archive, member) as f:
        for line in iter_text_lines(f, f"{archive}::{member}"):
            if sep != "\t":
                cols = [" ".join(c.split()) for c in line.split(sep)]
                if len(cols) > max(src_col, tgt_col):
                    yield cols[src_col], cols[tgt_col]
                continue
            cols = line.split("\t")
            if len(cols) > max(src_col, tgt_col):
                yield cols[src_col].strip(), cols[tgt_col].strip()


_OUTER_TAG = re.compile(r"^<[^<>]*>|<[^<>]*>$")


def read_xlf(archive, member: str | None = None) -> Iterator[tuple[str, str]]:
    """(source, target) of a RAPID XLIFF file (``<source xml:lang=..>..</source>`` then ``<target ..>``).

    fairseq's strip_xlf greps the two kinds of lines separately and removes the outer tags; here a
    target is paired with the source line before it (a source without a target is skipped, so the
    sides cannot shift), and entities are unescaped.
    """
    pending = None
    with open_member(archive, member) as f:
        for line in iter_text_lines(f, f"{archive}::{member}"):
            s = line.strip()
            if s.startswith("<source xml:lang="):
                pending = html.unescape(_OUTER_TAG.sub("", s)).strip()
            elif s.startswith("<target xml:lang=") and pending is not None:
                yield pending, html.unescape(_OUTER_TAG.sub("", s)).strip()
                pending = None
