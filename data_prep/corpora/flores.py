"""`mtkit data flores`: Flores-200 style folders <-> ML50-style valid/test files.

- ``read``: ``FLORES/{dev,devtest}/{code}.{dev,devtest}`` -> ``OUT/valid.{src}-{tgt}.{lang}`` (from
  dev) and ``OUT/test.{src}-{tgt}.{lang}`` (from devtest), for chosen directions (NLLB's mapping:
  valid -> dev, test -> devtest).
- ``write``: a multi-way parallel source -> ``OUT/{dev,devtest}/{flores_code}.{split}``; either
  line-aligned files (``--files eng_Latn=a.txt fra_Latn=b.txt``) or a raw folder whose directions
  share a pivot language (rows = pivot sentences present in every direction of that split).
"""
from __future__ import annotations

import os
from pathlib import Path

from data_prep.corpus_files import list_directions
from mtkit.errors import InputError
from mtkit.io import atomic_copy, read_lines, read_pairs, write_json, write_lines
from mtkit.langs import normalize, to_flores

SPLIT_MAP = {"valid": "dev", "test": "devtest"}


def read_flores(flores: str | os.PathLike, out: str | os.PathLike, directions: list[tuple[str, str]],
                style: str = "mbart") -> dict:
    """Write valid/test files of ``directions`` (pairs of mBART or Flores codes) from a Flores folder."""
    flores, out = Path(flores), Path(out)
    counts = {}
    for src, tgt in directions:
        s, t = normalize(src, style), normalize(tgt, style)
        for split, fsplit in SPLIT_MAP.items():
            files = {}
            for lang, name in ((s, src), (t, tgt)):
                p = flores / fsplit / f"{to_flores(name)}.{fsplit}"
                if not p.is_file():
                    raise InputError(f"{p}: not found; is {flores} a Flores-200 folder with {fsplit}/ ?")
                files[lang] = p
            rows = list(read_pairs(files[s], files[t]))
            write_lines(out / f"{split}.{s}-{t}.{s}", (a for a, _ in rows))
            write_lines(out / f"{split}.{s}-{t}.{t}", (b for _, b in rows))
            counts.setdefault(f"{s}-{t}", {})[split] = len(rows)
    write_json(out / "flores_manifest.json", {"flores": str(flores), "directions": counts})
    return counts


def write_from_files(files: dict[str, str], out: str | os.PathLike, split: str) -> int:
    """Copy line-aligned files (one per language) into ``OUT/{split}/{code}.{split}`` after checking them."""
    out = Path(out)
    counts = {}
    for code, path in files.items():
        counts[code] = sum(1 for _ in read_lines(path))
    if len(set(counts.values())) != 1:
        raise InputError(f"multi-way files must have the same number of lines: {counts}")
    for code, path in files.items():
        atomic_copy(path, out / split / f"{to_flores(code)}.{split}")
    return next(iter(counts.values()))


def write_from_raw(raw: str | os.PathLike, out: str | os.PathLike, pivot: str = "en_XX",
                   langs: list[str] | None = None) -> dict[str, int]:
    """Multi-way rows from a raw folder: pivot sentences translated in every selected direction.

    For each pivot sentence the first translation met (in file order) is used; row order is the
    order of the pivot sentences in the first direction.
    """
    raw, out = Path(raw), Path(out)
    dirs = [d for d in list_directions(raw) if pivot in d and (langs is None or (set(d) - {pivot}) & set(langs))]
    if not dirs:
        raise InputError(f"{raw}: no directions with pivot {pivot}")
    result = {}
    for split, fsplit in SPLIT_MAP.items():
        tables: dict[str, dict[str, str]] = {}
        first_order: list[str] = []
        for k, (s, t) in enumerate(dirs):
            other = t if s == pivot else s
            pa, pb = raw / f"{split}.{s}-{t}.{pivot}", raw / f"{split}.{s}-{t}.{other}"
            if not pa.exists():
                tables[other] = {}
                continue
            table: dict[str, str] = {}
            for a, b in read_pairs(pa, pb):
                table.setdefault(a, b)
            if k == 0:
                first_order = list(table)  # insertion order = order in the first direction
            tables[other] = table
        common = [x for x in first_order if all(x in tb for tb in tables.values())]
        write_lines(out / fsplit / f"{to_flores(pivot)}.{fsplit}", common)
        for other, table in tables.items():
            write_lines(out / fsplit / f"{to_flores(other)}.{fsplit}", (table[x] for x in common))
        result[fsplit] = len(common)
    return result
