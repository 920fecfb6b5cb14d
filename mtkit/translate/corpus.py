"""Translate a corpus: input files or stdin, streamed chunk by chunk to stdout or a resumable file,
optionally one contiguous shard of it (what ``mtkit translate`` runs).
"""
from __future__ import annotations

import logging
import sys
from itertools import islice
from pathlib import Path
from typing import Any

from mtkit.errors import InputError
from mtkit.translate.output import FileSink, StdoutSink
from mtkit.translate.sharding import Shard
from mtkit.translate.streaming import DEFAULT_BUFFER, count_lines, iter_lines, translate_chunks

logger = logging.getLogger(__name__)


def check_inputs(files: list[str], output: str | None = None, resume: bool = False,
                 shard: Shard | None = None) -> None:
    """Errors that need no model: missing inputs, options that do not go together."""
    for f in files:
        if not Path(f).is_file():
            raise InputError(f"input file {f} does not exist")
    if resume and not output:
        raise InputError("--resume continues a file written by --output FILE: give --output")
    if shard is not None and not files:
        raise InputError("--shard needs input files (a shard is a range of lines, so the total must be "
                         "known first; standard input cannot be counted in advance)")
    if shard is not None and not output:
        raise InputError("--shard needs --output OUT (shard I of N is written to OUT.shard-I-of-N, "
                         "and `mtkit translate --merge --output OUT` joins them)")


def input_identity(files: list[str]) -> list[dict[str, Any]]:
    """What a resumed run and a merge check to be sure the input is the same: paths and sizes."""
    if not files:
        return [{"path": "<stdin>"}]
    return [{"path": str(Path(f).resolve()), "bytes": Path(f).stat().st_size} for f in files]


def default_buffer_size(files: list[str]) -> int:
    """1 (each line as it arrives) when reading a terminal, else :data:`DEFAULT_BUFFER`."""
    return 1 if not files and sys.stdin.isatty() else DEFAULT_BUFFER


def translate_corpus(translator: Any, files: list[str], *, output: str | None = None, resume: bool = False,
                     shard: Shard | None = None, buffer_size: int | None = None,
                     progress: bool = False) -> int:
    """Translate ``files`` (stdin when empty) chunk by chunk; returns the lines written by this run.

    Output goes to stdout, or with ``output`` to a file that appears when complete and that a later
    call with ``resume=True`` continues (see :mod:`mtkit.translate.output`). ``shard`` translates
    only its range of lines, into ``Shard.path(output)``.
    """
    check_inputs(files, output, resume, shard)
    if buffer_size is None:
        buffer_size = default_buffer_size(files)
    nbest = translator.options.nbest > 1
    total = sum(count_lines(f) for f in files) if files and (output or progress) else None
    first, end = shard.bounds(total) if shard is not None and total is not None else (0, total)
    expected = None if total is None or end is None else end - first
    if output:
        record = {"settings": translator.settings(), "inputs": input_identity(files), "buffer_size": buffer_size,
                  "shard": [shard.index, shard.count] if shard else None, "first_line": first,
                  "lines": expected, "total_lines": total}
        path = shard.path(output) if shard else Path(output)
        sink: FileSink | StdoutSink = FileSink(path, record, nbest, resume, final_record=shard is not None)
        if sink.complete_already():
            logger.info("%s is complete already: nothing to do (delete it to translate again)", path)
            return 0
        if shard is not None:
            logger.info("shard %s: lines %d to %d of %d, into %s", shard, first + 1, end, total, path)
    else:
        sink = StdoutSink(nbest)
    done = sink.start()
    lines = iter_lines(files, start=first + done)
    if end is not None:
        lines = islice(lines, end - first - done)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=expected, initial=done, unit="line", desc=f"{translator.src}-{translator.tgt}",
                   leave=False, smoothing=0.1)
    written = 0
    try:
        for results in translate_chunks(translator, lines, buffer_size, start=done, number_from=first + done + 1,
                                        on_lines=bar.update if bar is not None else None):
            sink.write(results)
            written += len(results)
        sink.finish(expected)
    finally:
        if bar is not None:
            bar.close()
        if isinstance(sink, FileSink):
            sink.close()
    return written
