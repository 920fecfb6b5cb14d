"""WMT formats: SGML test sets (``<seg id=..>``), the WMT21+ XML test sets, and TSV training files."""
from __future__ import annotations

import html
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from data_prep.sources.archive import iter_text_lines, open_member
from mtkit.errors import InputError

_SEG = re.compile(r"<seg[^>]*>(.*?)</seg>", re.I)


def read_sgm(archive: str | os.PathLike, member: str | None = None) -> list[str]:
    """Segments of an SGML file, in order (entities unescaped)."""
    out = []
    with open_member(archive, member) as f:
        for line in iter_text_lines(f, f"{archive}::{member}"):
            for m in _SEG.finditer(line):
                out.append(html.unescape(m.group(1)).strip())
    return out


def read_sgm_pair(archive, src_member: str, ref_member: str) -> Iterator[tuple[str, str]]:
    a, b = read_sgm(archive, src_member), read_sgm(archive, ref_member)
    if len(a) != len(b):
        raise InputError(f"{archive}: {src_member} has {len(a)} segments but {ref_member} has {len(b)}")
    yield from zip(a, b)


def read_wmt_xml(archive, member: str | None, src_lang: str, tgt_lang: str) -> Iterator[tuple[str, str]]:
    """WMT21+ XML: ``<doc><src lang=xx><p><seg id=..>`` with ``<ref lang=yy>``; pairs by segment id."""
    with open_member(archive, member) as f:
        try:
            root = ET.parse(f).getroot()
        except ET.ParseError as e:
            raise InputError(f"{archive}::{member}: bad XML ({e})") from None
    for doc in root.iter("doc"):
        src = {s.get("id"): (s.text or "").strip() for x in doc.findall("src") if x.get("lang") == src_lang
               for s in x.iter("seg")}
        refs = [x for x in doc.findall("ref") if x.get("lang") == tgt_lang]
        if not refs:
            continue
        ref = {s.get("id"): (s.text or "").strip() for s in refs[0].iter("seg")}
        for k, v in src.items():
            if k in ref:
                yield v, ref[k]


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
