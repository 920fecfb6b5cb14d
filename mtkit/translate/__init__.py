"""Translation with a trained model (fairseq engine in-process, or an exported CTranslate2 folder).

Python API::

    from mtkit.translate import Translator, Options
    t = Translator.from_folder("runs/tiny", src_lang="en_XX", tgt_lang="de_DE", options=Options(beam=5))
    t.translate_lines(["the cat sleeps", "", "a dog"])   # -> 3 strings, in order

The model-folder layout is described in :mod:`mtkit.model_folder` and docs/translate.md.
"""
from __future__ import annotations

import sys

from mtkit.errors import InputError
from mtkit.translate.engine import Options, Translator

__all__ = ["Options", "Translator", "read_inputs", "split_lines"]


def split_lines(text: str) -> list[str]:
    """Lines as `wc -l` counts them: split on \\n only (not on the other characters str.splitlines
    treats as breaks, such as \\x0c or U+2028), a final newline does not start a new line."""
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return [p[:-1] if p.endswith("\r") else p for p in parts]


def read_inputs(files: list[str]) -> list[tuple[str, list[str]]]:
    """(name, lines) of each input file, or of stdin when ``files`` is empty; strict UTF-8."""
    if not files:
        try:  # bytes, so that a lone \r is not turned into a line break
            return [("<stdin>", split_lines(sys.stdin.buffer.read().decode("utf-8")))]
        except UnicodeDecodeError as e:
            raise InputError(f"standard input is not valid UTF-8 ({e})") from None
    out = []
    for f in files:
        try:
            with open(f, encoding="utf-8", newline="") as fh:
                out.append((f, split_lines(fh.read())))
        except FileNotFoundError:
            raise InputError(f"input file {f} does not exist") from None
        except UnicodeDecodeError as e:
            raise InputError(f"input file {f} is not valid UTF-8 ({e})") from None
    return out
