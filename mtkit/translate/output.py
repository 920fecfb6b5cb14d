"""Where translations go: stdout, or a file written so that a killed run can be resumed.

``--output OUT`` writes to ``OUT.partial`` and renames it to ``OUT`` only when every line is there,
so ``OUT`` is always complete. Next to the partial file, ``OUT.partial.json`` records what the run
translates (model, direction, options, inputs, shard, buffer size). Each chunk is appended with one
``write`` that ends on a newline and is flushed at once. With ``--resume``, a run that finds
``OUT.partial`` checks that the record matches, cuts the file back to the last whole chunk (a
kill during a write can at most leave part of the last chunk, never shifted lines) and translates
from there; the chunk schedule continues where it was cut, so the finished file has the same bytes
as a run that was never interrupted.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mtkit.errors import InputError, MtkitError
from mtkit.io import write_json
from mtkit.translate.streaming import chunk_start, offset_of_line

logger = logging.getLogger(__name__)

PARTIAL = ".partial"
RECORD = ".json"


def format_line(hyps: list[str], nbest: bool) -> str:
    """One output line: the best hypothesis, or all n-best tab-separated; never a line break inside."""
    text = "\t".join(hyps) if nbest else hyps[0]
    if "\n" in text or "\r" in text:
        text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return text


def encode_chunk(results: Iterable[list[str]], nbest: bool) -> bytes:
    return "".join(format_line(h, nbest) + "\n" for h in results).encode("utf-8")


def check_stdout_encoding(stream: Any = None) -> None:
    """Refuse, before any work, a standard output that cannot carry UTF-8."""
    stream = stream or sys.stdout
    enc = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    if enc not in ("utf8", "utf8sig"):
        raise InputError(
            f"standard output uses the {stream.encoding} encoding, but translations are UTF-8 and would "
            "not fit: run with PYTHONIOENCODING=utf-8 (or a UTF-8 locale, e.g. LANG=C.UTF-8), or write "
            "to a file with --output FILE"
        )


class StdoutSink:
    """Chunks to standard output (UTF-8 bytes), flushed one chunk at a time."""

    def __init__(self, nbest: bool):
        check_stdout_encoding()
        self.nbest = nbest
        self.lines = 0

    def start(self) -> int:
        return 0

    def write(self, results: list[list[str]]) -> None:
        out = sys.stdout.buffer
        out.write(encode_chunk(results, self.nbest))
        out.flush()
        self.lines += len(results)

    def finish(self, expected: int | None = None) -> None:
        sys.stdout.flush()


def count_complete(path: Path) -> tuple[int, int]:
    """(complete lines, bytes up to the end of the last one) of a file."""
    lines, end, pos = 0, 0, 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n = block.count(b"\n")
            if n:
                lines += n
                end = pos + block.rindex(b"\n") + 1
            pos += len(block)
    return lines, end


class FileSink:
    """Chunks appended to ``OUT.partial`` (see the module docstring); ``OUT`` appears when complete."""

    def __init__(self, out: str | os.PathLike, record: dict[str, Any], nbest: bool, resume: bool,
                 final_record: bool = False):
        self.out = Path(out)
        self.partial = self.out.with_name(self.out.name + PARTIAL)
        self.record_path = self.partial.with_name(self.partial.name + RECORD)
        self.record = record
        self.nbest = nbest
        self.resume = resume
        self.final_record = final_record
        self.lines = 0
        self.fd: int | None = None

    @property
    def done_record_path(self) -> Path:
        return self.out.with_name(self.out.name + RECORD)

    def complete_already(self) -> bool:
        """With --resume: ``OUT`` is there and no partial run is pending (nothing to do)."""
        return self.resume and self.out.is_file() and not self.partial.exists()

    def start(self) -> int:
        """Open the partial file; returns how many lines are done already (0 unless resuming)."""
        self.out.parent.mkdir(parents=True, exist_ok=True)
        done = 0
        if self.resume and self.partial.is_file():
            done = self._resume_point()
        else:
            if self.partial.exists() and not self.resume:
                logger.info("%s exists from an earlier run: starting over (pass --resume to continue it)",
                            self.partial)
            with open(self.partial, "wb"):
                pass
        write_json(self.record_path, self.record)
        self.fd = os.open(self.partial, os.O_WRONLY | os.O_APPEND)
        self.lines = done
        return done

    def _resume_point(self) -> int:
        try:
            old = json.loads(self.record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if old is None:
            raise InputError(
                f"cannot resume {self.partial}: its record {self.record_path} is missing or unreadable, so "
                "nothing says which input and settings it belongs to; delete the partial file and run "
                "without --resume")
        diff = sorted(k for k in set(old) | set(self.record) if old.get(k) != self.record.get(k))
        if diff:
            detail = "; ".join(f"{k}: was {old.get(k)!r}, now {self.record.get(k)!r}" for k in diff)
            raise InputError(
                f"cannot resume {self.partial}: it was written with other settings ({detail}). Run with "
                "the same settings, or without --resume to start over")
        lines, complete_end = count_complete(self.partial)
        total = self.record.get("lines")
        if total is not None and lines >= total:  # all there: only the rename was missed
            if lines > total:
                raise MtkitError(f"{self.partial} holds {lines} lines, more than the {total} of its input; "
                                 "delete it and run without --resume")
            keep, end = total, complete_end
        else:
            keep = chunk_start(lines, int(self.record["buffer_size"]))
            end = complete_end if keep == lines else offset_of_line(self.partial, keep)
        size = self.partial.stat().st_size
        if end != size:
            logger.warning("%s: cutting %d bytes after line %d (a chunk that was being written when the "
                           "run stopped)", self.partial, size - end, keep)
            os.truncate(self.partial, end)
        logger.info("resuming %s after %d lines", self.partial, keep)
        return keep

    def write(self, results: list[list[str]]) -> None:
        data = memoryview(encode_chunk(results, self.nbest))
        while data:
            n = os.write(self.fd, data)
            data = data[n:]
        self.lines += len(results)

    def finish(self, expected: int | None = None) -> None:
        """Check the line count, make the file durable and rename it to ``OUT``."""
        assert self.fd is not None
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = None
        if expected is not None and self.lines != expected:
            raise MtkitError(f"{self.partial} holds {self.lines} lines where {expected} were expected; "
                             "run again with --resume")
        if self.final_record:
            write_json(self.done_record_path, {**self.record, "bytes": self.partial.stat().st_size})
        os.replace(self.partial, self.out)
        self.record_path.unlink(missing_ok=True)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
