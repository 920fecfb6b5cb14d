"""Generic file I/O shared by every part of mtkit and data_prep.

- Atomic writes: a file (or folder) is written under a temporary name next to its target and renamed
  over it only when complete, so a killed process leaves the old file or the new one, never half a
  file. Temporary names start with ``.NAME.`` and end in ``.tmp`` (:func:`clean_stale_tmp` removes
  those a killed process left).
- Line reading for corpus files (:func:`read_lines`): streaming and strict; the file and line
  number are named for anything that could misalign a parallel corpus.
- Hashing (:func:`file_digest`, :func:`text_hash`), mirror paths for downloads, tool versions and
  the machine a result was measured on (:func:`versions`, :func:`machine`).
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from mtkit.errors import InputError

# ------------------------------------------------------------------------------ atomic writes


def _tmp_name(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                 fsync: bool = True) -> Iterator[IO]:
    """Open a temporary file next to ``path``; rename it over ``path`` only if the block succeeds.

    Text mode writes ``\\n`` line ends on every platform.
    """
    path = Path(path)
    fd, tmp = _tmp_name(path)
    try:
        kwargs: dict[str, Any] = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: Any, **kwargs: Any) -> None:
    """Atomically write ``obj`` as indented UTF-8 JSON with a final newline."""
    kwargs.setdefault("indent", 2)
    kwargs.setdefault("ensure_ascii", False)
    with atomic_write(path) as f:
        json.dump(obj, f, **kwargs)
        f.write("\n")


def write_lines(path: str | os.PathLike, lines: Iterable[str]) -> int:
    """Atomically write lines (without their newlines); returns how many."""
    n = 0
    with atomic_write(path) as f:
        for line in lines:
            f.write(line)
            f.write("\n")
            n += 1
    return n


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy the bytes of ``src`` to ``dst`` through a temporary file (``dst`` gets a new mtime)."""
    dst = Path(dst)
    fd, tmp = _tmp_name(dst)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_move(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Rename ``src`` over ``dst`` (same file system), creating ``dst``'s folder."""
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def check_out_dir(out: str | os.PathLike, force: bool = False) -> None:
    """Refuse a non-empty output folder (or a file in its place) unless ``force``."""
    from mtkit.errors import MtkitError

    out = Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise MtkitError(f"output folder {out} exists and is not empty; pass --force to replace it")


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name and swap it in for ``out`` when the block succeeds.

    A non-empty ``out`` is refused unless ``force`` (:func:`check_out_dir`); with ``force`` the old
    folder is removed only after the new one is complete.
    """
    out = Path(out)
    check_out_dir(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    holder = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        target = holder / "new"
        target.mkdir()
        yield target
        if out.exists():
            os.replace(out, holder / "old")
        os.replace(target, out)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def clean_stale_tmp(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Remove temporary files and folders a killed process left (``.NAME.*.tmp``); returns them."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in (folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")):
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
    return removed


# ------------------------------------------------------------------------------ reading lines


class LineError(InputError):
    """A line that cannot be used as is (bad UTF-8, NUL byte); names the file and line."""


_SEPARATORS = re.compile(r"[\r\u2028\u2029\x85]")
# their UTF-8 forms (the lead bytes 0xC2 and 0xE2 never occur inside another character)
_SEPARATOR_BYTES = ("\u2028".encode(), "\u2029".encode(), "\x85".encode())


def decode_line(raw: bytes, path: str | os.PathLike, lineno: int) -> str:
    """Decode one corpus line strictly: UTF-8, BOM only on line 1, no NUL; CRLF stripped.

    Other characters that some tools treat as line breaks (a lone CR, U+0085, U+2028, U+2029) become
    spaces, so that no later tool splits the line and misaligns a parallel corpus.
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
    return _SEPARATORS.sub(" ", text) if _SEPARATORS.search(text) else text


def read_lines(path: str | os.PathLike, lenient: bool = False) -> Iterator[str]:
    """Yield the lines of a corpus file, streaming and strict (see :func:`decode_line`).

    With ``lenient=True`` a bad line is yielded as its :class:`LineError` instead of raising, so a
    filter can drop (and count) it while keeping the two sides aligned.

    Lines are read in blocks of about 1 MiB; a block with no NUL, no CR and no other line separator
    is decoded in one call (a block is valid UTF-8 exactly when each of its lines is, since a
    newline byte cannot occur inside a multi-byte character). Any other block, and line 1 (which
    may carry a BOM), goes through :func:`decode_line` line by line, so the result is the same.
    """
    with open(path, "rb") as f:
        lineno = 0
        while True:
            block_lines = f.readlines(1 << 20)
            if not block_lines:
                return
            start = 0
            if lineno == 0:
                start = 1
                yield from _decode_each(block_lines[:1], path, 1, lenient)
            fast = _decode_block(block_lines, start)
            if fast is not None:
                yield from fast
            else:
                yield from _decode_each(block_lines[start:], path, lineno + start + 1, lenient)
            lineno += len(block_lines)


def _decode_block(block_lines: list[bytes], start: int) -> list[str] | None:
    """The lines of ``block_lines[start:]`` decoded in one call, or None when the block needs the
    line-by-line path (a NUL, a CR, invalid UTF-8, or a character that becomes a space)."""
    block = b"".join(block_lines[start:])
    if not block:
        return []
    if b"\x00" in block or b"\r" in block or any(sep in block for sep in _SEPARATOR_BYTES):
        return None
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if block.endswith(b"\n"):
        lines.pop()
    return lines


def _decode_each(raw_lines: list[bytes], path: str | os.PathLike, first_lineno: int,
                 lenient: bool) -> Iterator[str]:
    for i, raw in enumerate(raw_lines, first_lineno):
        try:
            yield decode_line(raw, path, i)
        except LineError as e:
            if not lenient:
                raise
            yield e  # type: ignore[misc]


def read_pairs(src_path: str | os.PathLike, tgt_path: str | os.PathLike,
               lenient: bool = False) -> Iterator[tuple]:
    """Yield aligned (src, tgt) lines; a different line count is an error naming both files."""
    sentinel = object()
    n = 0
    for x, y in itertools.zip_longest(read_lines(src_path, lenient), read_lines(tgt_path, lenient),
                                      fillvalue=sentinel):
        if x is sentinel or y is sentinel:
            longer, shorter = (tgt_path, src_path) if x is sentinel else (src_path, tgt_path)
            raise InputError(
                f"line counts differ: {shorter} has {n} lines but {longer} has more (line {n + 1}); "
                "the two sides of a parallel corpus must be line-aligned"
            )
        n += 1
        yield x, y


def count_lines(path: str | os.PathLike) -> int:
    """Lines of a file as ``wc -l`` counts them (newline characters)."""
    n = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            n += chunk.count(b"\n")
    return n


# ------------------------------------------------------------------------------ hashing, paths


def file_digest(path: str | os.PathLike, algo: str = "blake2b") -> str:
    """Hex digest of a file's bytes (``blake2b`` with 16-byte digests, or any hashlib name)."""
    h = hashlib.blake2b(digest_size=16) if algo == "blake2b" else hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def text_hash(text: str) -> int:
    """A stable 64-bit hash (blake2b) of a string; the same on every machine and run."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def mirror_path(mirror: str | os.PathLike, url: str) -> Path:
    """Where a URL's file lies in a mirror folder: ``MIRROR/<host>/<path>``."""
    u = urlparse(url)
    return Path(mirror) / u.netloc / u.path.lstrip("/")


def versions(packages: Iterable[str] = ("mtkit", "torch", "fairseq", "sentencepiece", "sacrebleu")
             ) -> dict[str, str]:
    """Python and installed package versions, for manifests and results files."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in packages:
        dist = "fairseq-fixed" if name == "fairseq" else name
        try:
            out[name] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` of Linux ``/proc/cpuinfo`` (None where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; elsewhere what :mod:`platform` knows)."""
    return _cpuinfo("model name") or platform.processor() or "unknown"


#: the SIMD instruction sets that decide CPU kernel speed (CTranslate2 and oneDNN pick kernels by them)
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
              "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def cpu_simd() -> list[str]:
    """Which of :data:`SIMD_FLAGS` the CPU has (Linux ``/proc/cpuinfo`` flags; ``[]`` elsewhere)."""
    have = set((_cpuinfo("flags") or "").split())
    return [f for f in SIMD_FLAGS if f in have]


def git_commit(repo: str | Path) -> str | None:
    """The commit checked out in ``repo`` (for results files), or None outside a git checkout."""
    import subprocess

    try:
        res = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def machine() -> dict[str, Any]:
    """The machine a result was measured on, for results files: CPU model, core count, OpenMP threads,
    platform and the 1-minute load average (other work on the machine slows timings)."""
    try:
        load: float | None = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {"cpu": cpu_name(), "cpus": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "platform": platform.platform(), "load_1min": load}
