"""Reading hypothesis/reference files exactly as the sacrebleu command line does, but strictly.

sacrebleu opens files with ``newline="\\n"`` and strips trailing whitespace from every line; we split
and strip the same way so our scores equal ``sacrebleu REF -i HYP`` on the same files. Unlike
sacrebleu we decode strictly and say which line of which file is not UTF-8, and we refuse to score
files of different lengths instead of scoring a prefix.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

from mtkit.errors import InputError


def decode_lines(data: bytes, name: str | os.PathLike) -> list[str]:
    """Split ``data`` on ``\\n`` only, decode each line strictly as UTF-8 and strip trailing space."""
    if not data:
        return []
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    lines: list[str] = []
    for lineno, raw in enumerate(raw_lines, 1):
        try:
            lines.append(raw.decode("utf-8").rstrip())
        except UnicodeDecodeError as e:
            bad = raw[max(0, e.start - 8): e.start + 8]
            raise InputError(
                f"{name}: line {lineno}: invalid UTF-8 at byte {e.start} of the line ({bad!r}); "
                "convert the file to UTF-8 (e.g. iconv -f LATIN1 -t UTF-8) and re-run"
            ) from None
    return lines


def read_lines(path: str | os.PathLike) -> list[str]:
    """All lines of a text file (``.gz`` allowed), as sacrebleu's CLI reads them."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a text file with one sentence a line") from None
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return decode_lines(data, path)


def check_same_length(hyp_name: str | os.PathLike, n_hyp: int, ref_name: str | os.PathLike, n_ref: int,
                      what: str = "references") -> None:
    """Raise an error naming both files and both counts when they differ."""
    if n_hyp != n_ref:
        raise InputError(
            f"line counts differ: hypotheses {hyp_name} have {n_hyp} lines but {what} {ref_name} "
            f"have {n_ref} lines; every hypothesis line must translate the same line of the {what}"
        )
