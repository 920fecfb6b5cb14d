"""Input lines read lazily, cut into chunks, each chunk translated as soon as it is complete.

Lines are what ``wc -l`` counts, as :func:`mtkit.translate.split_lines` defines them: split on
``\\n`` only (``\\x0c``, a lone ``\\r``, U+0085, U+2028 stay inside the line), one ``\\r`` before the
``\\n`` removed, a last line without ``\\n`` still a line, strict UTF-8 (an error names the file and
line), a byte-order mark at the start of a file dropped.

Chunks: the first holds :data:`FIRST_CHUNK` lines (so the first output comes within seconds), each
next one twice the last, up to ``buffer_size``; ``buffer_size`` 0 is the whole input as one chunk.
The engines sort a chunk's lines by length for batching and put them back in order, so the output of
a chunk is written in input order as soon as the chunk is done, and memory holds one chunk at a time.
The sizes are a fixed function of the position, so a resumed run cuts the rest of the input exactly
where the first run would have.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any

from mtkit.errors import InputError

#: lines in the first chunk; the following chunks double up to the buffer size
FIRST_CHUNK = 64
#: default --buffer-size for files and pipes (an interactive terminal gets 1)
DEFAULT_BUFFER = 10000

BOM = b"\xef\xbb\xbf"


def decode_lines(f: IO[bytes], name: str, first: int = 1) -> Iterator[str]:
    """The lines of a binary stream (see the module docstring); a bad byte is an :class:`InputError`.

    ``first``: the line number of the stream's first line (a stream that starts mid-file).
    """
    for no, raw in enumerate(f, first):
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if no == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{name}:{no}: invalid UTF-8 at byte {e.start} "
                             f"({raw[max(0, e.start - 8):e.start + 8]!r}); convert the input to UTF-8 "
                             "(e.g. iconv -f LATIN1 -t UTF-8) and run again") from None


def iter_lines(files: list[str], start: int = 0) -> Iterator[str]:
    """The lines of each file in turn, or of stdin when ``files`` is empty, read as they are needed.

    ``start`` lines are skipped first; in files without decoding them (whole files by their line
    count, then a seek to the byte where line ``start`` begins), so a shard near the end of a large
    input starts at once.
    """
    if not files:
        yield from islice(decode_lines(sys.stdin.buffer, "<stdin>"), start, None)
        return
    for name in files:
        try:
            f = open(name, "rb")  # noqa: SIM115 - closed below, after the generator is drained
        except FileNotFoundError:
            raise InputError(f"input file {name} does not exist") from None
        with f:
            skip = 0
            if start:
                n = count_lines(name)
                if start >= n:
                    start -= n
                    continue
                skip, start = start, 0
                f.seek(offset_of_line(name, skip))
            yield from decode_lines(f, name, first=skip + 1)


def count_lines(path: str | Path) -> int:
    """Lines of a file as :func:`decode_lines` yields them (a last line without a newline counts)."""
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def offset_of_line(path: str | Path, line: int) -> int:
    """Byte offset where line ``line`` (0-based) of a file starts."""
    if line == 0:
        return 0
    seen, pos = 0, 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n = block.count(b"\n")
            if seen + n >= line:
                i = -1
                for _ in range(line - seen):
                    i = block.index(b"\n", i + 1)
                return pos + i + 1
            seen += n
            pos += len(block)
    raise ValueError(f"{path} has fewer than {line} lines")


def chunk_sizes(buffer_size: int) -> Iterator[int]:
    """Sizes of the successive chunks: FIRST_CHUNK, doubling, up to ``buffer_size`` (0: unlimited)."""
    if buffer_size < 0:
        raise InputError(f"--buffer-size must be 0 (whole input) or more (got {buffer_size})")
    if buffer_size == 0:
        while True:
            yield sys.maxsize
    size = min(FIRST_CHUNK, buffer_size)
    while True:
        yield size
        size = min(2 * size, buffer_size)


def chunk_start(done: int, buffer_size: int) -> int:
    """The last chunk boundary at or before line ``done`` (where a resumed run starts again)."""
    start = 0
    for size in chunk_sizes(buffer_size):
        if start + size > done:
            return start
        start += size
    raise AssertionError("unreachable")


def chunks(lines: Iterable[str], buffer_size: int, start: int = 0) -> Iterator[list[str]]:
    """``lines`` cut by :func:`chunk_sizes`, the schedule counted from line ``start`` (a chunk boundary)."""
    it = iter(lines)
    sizes = chunk_sizes(buffer_size)
    pos = 0
    for size in sizes:  # skip the chunks before ``start``
        if pos >= start:
            break
        pos += size
    if pos != start:
        raise ValueError(f"line {start} is not a chunk boundary for buffer size {buffer_size}")
    while True:
        chunk = list(islice(it, size))
        if not chunk:
            return
        yield chunk
        size = next(sizes)


def translate_chunks(translator: Any, lines: Iterable[str], buffer_size: int, start: int = 0,
                     number_from: int | None = None,
                     on_lines: Callable[[int], Any] | None = None) -> Iterator[list[list[str]]]:
    """The n-best lists of ``lines``, one list per chunk, each yielded as soon as its chunk is done.

    ``start``: lines of the run before ``lines`` (a resumed run), a chunk boundary, so the chunks are
    those of an uninterrupted run. ``number_from``: the input line number of the first of ``lines``
    (for warnings; default ``start + 1``).
    """
    first = start + 1 if number_from is None else number_from
    for chunk in chunks(lines, buffer_size, start):
        yield translator.translate_chunk(chunk, on_lines=on_lines, first_line=first)
        first += len(chunk)
