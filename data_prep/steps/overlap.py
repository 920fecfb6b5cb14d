"""Drop training pairs whose source or target appears in any valid or test set (fairseq semantics).

As fairseq's ``remove_valid_test_in_train.py``: the held-out set is every valid and test sentence of
every direction, both sides, after ``strip()``; a training pair is dropped when its source OR its
target is in that set. The held-out sets are small, so their hashes are held in memory; training
files are streamed through :func:`data_prep.steps.filters.filter_pairs` with that set.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from data_prep.corpus_files import CORPUS_FILE_RE
from mtkit.io import read_lines, text_hash

log = logging.getLogger(__name__)


def heldout_hashes(folders: Iterable[str | os.PathLike]) -> set[int]:
    """Hashes of every stripped valid/test line (all directions, both sides) in ``folders``."""
    out: set[int] = set()
    for folder in folders:
        for p in sorted(Path(folder).iterdir()):
            m = CORPUS_FILE_RE.match(p.name)
            if m and m.group(1) in ("valid", "test"):
                for line in read_lines(p):
                    if line.strip():
                        out.add(text_hash(line.strip()))
    return out
