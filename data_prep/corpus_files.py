"""The corpus folder layout every data_prep step reads and writes: ``{split}.{src}-{tgt}.{lang}``.

One sentence a line, UTF-8, both sides of a direction line-aligned (fairseq's ML50 layout, mBART
codes). Reading and atomic writing of these files is :mod:`mtkit.io`'s job; this module only knows
their names, finds the directions of a folder and checks that the two sides of each file pair
have the same number of lines before any expensive step reads them.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from mtkit.errors import InputError

#: A raw/clean corpus file: ``{split}.{src}-{tgt}.{lang}``.
CORPUS_FILE_RE = re.compile(r"^(train|valid|test)\.([A-Za-z]{2,3}_[A-Za-z]{2,4})-([A-Za-z]{2,3}_[A-Za-z]{2,4})"
                            r"\.([A-Za-z]{2,3}_[A-Za-z]{2,4})$")
SPLITS = ("train", "valid", "test")
HELD_OUT = ("valid", "test")


def corpus_file(folder: str | os.PathLike, split: str, src: str, tgt: str, lang: str) -> Path:
    return Path(folder) / f"{split}.{src}-{tgt}.{lang}"


def list_directions(folder: str | os.PathLike) -> list[tuple[str, str]]:
    """Directions (src, tgt) present in a corpus folder, in sorted order."""
    found = set()
    for p in Path(folder).iterdir():
        m = CORPUS_FILE_RE.match(p.name)
        if m:
            found.add((m.group(2), m.group(3)))
    return sorted(found)


def text_line_count(path: str | os.PathLike) -> int:
    """Lines of a text file as a line reader sees them (a last line without a newline counts)."""
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def check_pairs(folder: str | os.PathLike, directions: list[tuple[str, str]],
                splits: tuple[str, ...] = SPLITS) -> dict[tuple[str, str, str], int]:
    """Line counts of every file pair; a missing side or a different count is one error naming them all.

    This reads bytes only (fast), so a bad corpus is refused before anything expensive (SentencePiece
    training, encoding) starts or writes anything.
    """
    counts: dict[tuple[str, str, str], int] = {}
    problems = []
    for src, tgt in directions:
        for split in splits:
            a, b = corpus_file(folder, split, src, tgt, src), corpus_file(folder, split, src, tgt, tgt)
            if not a.exists() and not b.exists():
                continue
            if not (a.exists() and b.exists()):
                have, miss = (a, b) if a.exists() else (b, a)
                problems.append(f"{have}: the other side ({miss.name}) is missing")
                continue
            na, nb = text_line_count(a), text_line_count(b)
            if na != nb:
                problems.append(f"{a} has {na} lines but {b} has {nb}")
            counts[(src, tgt, split)] = na
    if problems:
        raise InputError("the two sides of a parallel corpus must be line-aligned:\n  " + "\n  ".join(problems)
                         + "\nfix or remove these files and re-run")
    return counts


def progress_settings() -> dict:
    """tqdm settings shared by the steps: on stderr, quiet when stderr is not a terminal."""
    return {"file": sys.stderr, "disable": None, "mininterval": 1.0}
