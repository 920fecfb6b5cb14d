"""OPUS TMX (``<tu><tuv xml:lang="en"><seg>..</seg></tuv>...</tu>``), streamed with iterparse."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from data_prep.sources.archive import open_member
from mtkit.errors import InputError

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _base(lang: str) -> str:
    return lang.replace("_", "-").split("-")[0].lower()


def read_tmx(archive: str | os.PathLike, src_lang: str, tgt_lang: str,
             member: str | None = None) -> Iterator[tuple[str, str]]:
    """(src, tgt) from each translation unit that has both languages (ISO 639-1, e.g. 'af', 'en')."""
    with open_member(archive, member) as f:
        try:
            for _event, el in ET.iterparse(f, events=("end",)):
                if el.tag != "tu":
                    continue
                segs = {}
                for tuv in el.iter("tuv"):
                    lang = tuv.get(XML_LANG) or tuv.get("lang") or ""
                    seg = tuv.find("seg")
                    if seg is not None:
                        segs[_base(lang)] = " ".join("".join(seg.itertext()).split())
                el.clear()
                a, b = segs.get(_base(src_lang)), segs.get(_base(tgt_lang))
                if a and b:
                    yield a, b
        except ET.ParseError as e:
            raise InputError(f"{archive}: bad TMX ({e}); is the file truncated?") from None
