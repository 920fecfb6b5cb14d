"""Translation with a trained model (fairseq engine in-process, or an exported CTranslate2 folder).

Python API::

    from mtkit.translate import Translator, Options
    t = Translator.from_folder("runs/tiny", src_lang="en_XX", tgt_lang="de_DE", options=Options(beam=5))
    t.translate_lines(["the cat sleeps", "", "a dog"])   # -> 3 strings, in order

    from mtkit.translate import translate_corpus
    translate_corpus(t, ["mono.en"], output="mono.de", resume=True)   # streamed, resumable

Modules: :mod:`~mtkit.translate.engine` (Translator, the fairseq and CTranslate2 engines),
:mod:`~mtkit.translate.streaming` (lazy reading, chunks), :mod:`~mtkit.translate.output` (stdout and
resumable files), :mod:`~mtkit.translate.sharding` (``--shard I/N`` and the merge),
:mod:`~mtkit.translate.workers` (devices, one worker each), :mod:`~mtkit.translate.corpus` (all of
them together). The model-folder layout is described in :mod:`mtkit.model_folder` and
docs/translate.md.
"""
from __future__ import annotations

import sys

from mtkit.errors import InputError
from mtkit.translate.corpus import translate_corpus
from mtkit.translate.engine import Options, Translator
from mtkit.translate.sharding import Shard, merge_shards, parse_shard
from mtkit.translate.streaming import decode_lines, iter_lines

__all__ = ["Options", "Shard", "Translator", "iter_lines", "merge_shards", "parse_shard", "read_inputs",
           "split_lines", "translate_corpus"]


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
    """(name, lines) of each input file, or of stdin when ``files`` is empty; strict UTF-8.

    Reads everything into memory; :func:`iter_lines` reads the same lines as they are needed.
    """
    if not files:
        return [("<stdin>", list(decode_lines(sys.stdin.buffer, "<stdin>")))]
    out = []
    for f in files:
        try:
            with open(f, "rb") as fh:
                out.append((f, list(decode_lines(fh, f))))
        except FileNotFoundError:
            raise InputError(f"input file {f} does not exist") from None
    return out
