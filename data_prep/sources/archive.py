"""Open a file inside a .tar(.gz|.bz2|.xz) / .zip / .gz / .xz archive, or a plain file, as a binary stream.

Member names are matched exactly, else by their end (``name`` matches ``any/folder/name``, like
fairseq's ``$orig/*/name`` globs), else as a glob (``*.tmx``); exactly one member must match.
"""
from __future__ import annotations

import contextlib
import fnmatch
import gzip
import io
import lzma
import os
import tarfile
import zipfile
from collections.abc import Iterator
from typing import IO

from mtkit.errors import InputError
from mtkit.io import decode_line


@contextlib.contextmanager
def open_member(archive: str | os.PathLike, member: str | None = None) -> Iterator[IO[bytes]]:
    """``member`` may end with ``.gz`` inside a tarball (it is decompressed too)."""
    archive = str(archive)
    try:
        if member is None:
            if archive.endswith(".gz") and not tarfile.is_tarfile(archive):
                with gzip.open(archive, "rb") as f:
                    yield f
            elif archive.endswith(".xz") and not tarfile.is_tarfile(archive):
                with lzma.open(archive, "rb") as f:
                    yield f
            else:
                with open(archive, "rb") as f:
                    yield f
            return
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                with z.open(z.getinfo(_resolve(archive, member, z.namelist()))) as f:
                    yield _maybe_gunzip(f, member)
            return
        with tarfile.open(archive, "r:*") as t:
            try:
                info = t.getmember(member)
            except KeyError:
                info = t.getmember(_resolve(archive, member, t.getnames()))
            f = t.extractfile(info)
            if f is None:
                raise InputError(f"{archive}: {member} is not a regular file")
            yield _maybe_gunzip(f, member)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, gzip.BadGzipFile, lzma.LZMAError) as e:
        raise InputError(f"{archive}: cannot read ({e}); the archive is truncated or corrupt: "
                         "delete it and re-run to download it again") from None


def _resolve(archive: str, member: str, names: list[str]) -> str:
    """The one member name that ``member`` designates (exact, by its end, or as a glob)."""
    if member in names:
        return member
    hit = [n for n in names if n.endswith("/" + member) or n == member.lstrip("./")]
    if not hit and any(c in member for c in "*?["):
        hit = [n for n in names if fnmatch.fnmatch(n, member) or fnmatch.fnmatch(n.rsplit("/", 1)[-1], member)]
    if len(hit) != 1:
        what = "no member" if not hit else f"{len(hit)} members ({hit[:4]})"
        raise InputError(f"{archive}: has {what} matching {member!r} (has: {names[:8]} ...)")
    return hit[0]


def list_members(archive: str | os.PathLike) -> list[str]:
    """Names of the regular files in a tar or zip archive."""
    archive = str(archive)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                return [n for n in z.namelist() if not n.endswith("/")]
        with tarfile.open(archive, "r:*") as t:
            return [m.name for m in t.getmembers() if m.isfile()]
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, gzip.BadGzipFile, lzma.LZMAError) as e:
        raise InputError(f"{archive}: cannot read ({e}); the archive is truncated or corrupt: "
                         "delete it and re-run to download it again") from None


def _maybe_gunzip(f: IO[bytes], member: str) -> IO[bytes]:
    if member.endswith(".gz"):
        return gzip.GzipFile(fileobj=io.BufferedReader(f))  # type: ignore[arg-type]
    if member.endswith(".xz"):
        return lzma.LZMAFile(io.BufferedReader(f))  # type: ignore[arg-type,return-value]
    return f


def iter_text_lines(stream: IO[bytes], where: str) -> Iterator[str]:
    """Strictly decoded lines of a stream (see :func:`mtkit.io.decode_line`)."""
    for i, raw in enumerate(stream, 1):
        yield decode_line(raw, where, i)
