"""Shared plumbing for data_prep: atomic writes, strict line reading, hashing, manifests, step cache.

Every step reads whole files as bytes lines and decodes them strictly, so bad input is reported with
the file and line number instead of being silently "repaired" on one side only (which would
misalign a parallel corpus).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mtkit.errors import InputError

log = logging.getLogger(__name__)

#: A raw/clean corpus file: ``{split}.{src}-{tgt}.{lang}``.
CORPUS_FILE_RE = re.compile(r"^(train|valid|test)\.([A-Za-z]{2,3}_[A-Za-z]{2,4})-([A-Za-z]{2,3}_[A-Za-z]{2,4})\.([A-Za-z]{2,3}_[A-Za-z]{2,4})$")
SPLITS = ("train", "valid", "test")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs: dict[str, Any] = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_lines(path: str | os.PathLike, lines) -> int:
    """Atomically write an iterable of lines (no newlines inside); returns the count."""
    n = 0
    with atomic_open(path) as f:
        for line in lines:
            f.write(line)
            f.write("\n")
            n += 1
    return n


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, sort_keys=False)
        f.write("\n")


def clean_stale_tmp(folder: str | os.PathLike) -> None:
    """Remove temporary files left by a killed process (``.NAME.*.tmp``)."""
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.rglob(".*.tmp"):
            with contextlib.suppress(OSError):
                p.unlink()


class LineError(InputError):
    pass


def decode_line(raw: bytes, path: str | os.PathLike, lineno: int) -> str:
    """Decode one line strictly: UTF-8, BOM only on line 1, no NUL; CRLF tolerated and stripped.

    Raises :class:`InputError` naming the file and line for anything that cannot be aligned safely.
    """
    if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if b"\x00" in raw:
        raise LineError(f"{path}:{lineno}: NUL byte in line; clean the file (e.g. tr -d '\\000') and re-run")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LineError(
            f"{path}:{lineno}: invalid UTF-8 at byte {e.start} ({raw[max(0, e.start - 8):e.start + 8]!r}); "
            "convert the file to UTF-8 (iconv) and re-run"
        ) from None
    if "\r" in text or "\u2028" in text or "\u2029" in text or "\x85" in text:
        # a stray CR / Unicode line separator would split the line for other tools: misalignment risk
        text = re.sub(r"[\r\u2028\u2029\x85]", " ", text)
    return text


def read_lines(path: str | os.PathLike) -> Iterator[str]:
    """Yield the decoded lines of a text file (streaming, strict; see :func:`decode_line`)."""
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            yield decode_line(raw, path, i)


def read_lines_lenient(path: str | os.PathLike) -> Iterator[str | LineError]:
    """Like :func:`read_lines`, but yields the :class:`LineError` in place of a bad line.

    Filters use this to drop (and count) a bad pair instead of stopping, while keeping alignment.
    """
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            try:
                yield decode_line(raw, path, i)
            except LineError as e:
                yield e


def read_pairs(src_path: str | os.PathLike, tgt_path: str | os.PathLike,
               lenient: bool = False) -> Iterator[tuple]:
    """Yield aligned (src, tgt) lines; a different line count is an error naming both files.

    With ``lenient=True`` a bad line comes back as a :class:`LineError` object instead of raising.
    """
    reader = read_lines_lenient if lenient else read_lines
    a, b = reader(src_path), reader(tgt_path)
    n = 0
    sentinel = object()
    while True:
        x = next(a, sentinel)
        y = next(b, sentinel)
        if x is sentinel and y is sentinel:
            return
        if x is sentinel or y is sentinel:
            longer, shorter = (tgt_path, src_path) if x is sentinel else (src_path, tgt_path)
            raise InputError(
                f"line counts differ: {shorter} has {n} lines but {longer} has more (line {n + 1}); "
                "the two sides of a parallel corpus must be line-aligned"
            )
        n += 1
        yield x, y  # type: ignore[misc]


def count_lines(path: str | os.PathLike) -> int:
    n = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            n += chunk.count(b"\n")
    return n


def text_hash(text: str) -> int:
    """A stable 64-bit hash (blake2b) of a string; the same on every machine and run."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("mtkit", "sentencepiece", "fairseq", "sacrebleu"):
        try:
            from importlib.metadata import version

            out[name] = version("fairseq-fixed" if name == "fairseq" else name)
        except Exception:  # noqa: BLE001 - optional info
            pass
    return out


def list_directions(raw_dir: str | os.PathLike) -> list[tuple[str, str]]:
    """Directions (src, tgt) present in a raw folder, in sorted order."""
    found = set()
    for p in Path(raw_dir).iterdir():
        m = CORPUS_FILE_RE.match(p.name)
        if m:
            found.add((m.group(2), m.group(3)))
    return sorted(found)


def corpus_path(folder: str | os.PathLike, split: str, src: str, tgt: str, lang: str) -> Path:
    return Path(folder) / f"{split}.{src}-{tgt}.{lang}"


class StepCache:
    """Skip a step when the digest of its inputs and settings matches the one recorded last time.

    The record (``.done.<step>.json``) is written after the step's outputs are all in place, so a
    killed run is simply redone.
    """

    def __init__(self, folder: str | os.PathLike, step: str):
        self.path = Path(folder) / f".done.{step}.json"

    @staticmethod
    def key(inputs: list[str | os.PathLike], settings: dict) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps(settings, sort_keys=True, default=str).encode())
        for p in sorted(str(x) for x in inputs):
            st = os.stat(p)
            h.update(f"{os.path.basename(p)}\0{st.st_size}\0".encode())
            h.update(file_digest(p).encode())
        return h.hexdigest()

    def is_done(self, key: str, outputs: list[str | os.PathLike] | None = None) -> bool:
        try:
            rec = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return False
        if rec.get("key") != key:
            return False
        return all(os.path.exists(p) for p in (outputs or rec.get("outputs", [])))

    def record(self, key: str, outputs: list[str | os.PathLike], info: dict | None = None) -> None:
        write_json(self.path, {"key": key, "outputs": [str(p) for p in outputs], "info": info or {}})

    def info(self) -> dict:
        try:
            return json.loads(self.path.read_text()).get("info", {})
        except (OSError, ValueError):
            return {}


def setup_progress() -> dict:
    """tqdm settings shared by steps (stderr; quiet when not a terminal)."""
    return {"file": sys.stderr, "disable": None, "mininterval": 1.0}
