"""Open a file inside a .tar(.gz|.bz2|.xz) / .zip / .gz archive, or a plain file, as a binary stream."""
from __future__ import annotations

import contextlib
import gzip
import io
import os
import tarfile
import zipfile
from collections.abc import Iterator
from typing import IO

from mtkit.errors import InputError


@contextlib.contextmanager
def open_member(archive: str | os.PathLike, member: str | None = None) -> Iterator[IO[bytes]]:
    """``member`` may end with ``.gz`` inside a tarball (it is decompressed too)."""
    archive = str(archive)
    try:
        if member is None:
            if archive.endswith(".gz") and not tarfile.is_tarfile(archive):
                with gzip.open(archive, "rb") as f:
                    yield f
            else:
                with open(archive, "rb") as f:
                    yield f
            return
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                try:
                    info = z.getinfo(member)
                except KeyError:
                    raise InputError(f"{archive}: has no member {member!r} (has: {z.namelist()[:8]} ...)") from None
                with z.open(info) as f:
                    yield _maybe_gunzip(f, member)
            return
        with tarfile.open(archive, "r:*") as t:
            try:
                info = t.getmember(member)
            except KeyError:
                names = t.getnames()
                hit = [n for n in names if n.endswith("/" + member) or n == member.lstrip("./")]
                if len(hit) != 1:
                    raise InputError(f"{archive}: has no member {member!r} (has: {names[:8]} ...)") from None
                info = t.getmember(hit[0])
            f = t.extractfile(info)
            if f is None:
                raise InputError(f"{archive}: {member} is not a regular file")
            yield _maybe_gunzip(f, member)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, gzip.BadGzipFile) as e:
        raise InputError(f"{archive}: cannot read ({e}); the archive is truncated or corrupt: "
                         "delete it and re-run to download it again") from None


def _maybe_gunzip(f: IO[bytes], member: str) -> IO[bytes]:
    return gzip.GzipFile(fileobj=io.BufferedReader(f)) if member.endswith(".gz") else f  # type: ignore[arg-type]


def iter_text_lines(stream: IO[bytes], where: str) -> Iterator[str]:
    """Strictly decoded lines of a stream (see data_prep.common.decode_line)."""
    from data_prep.common import decode_line

    for i, raw in enumerate(stream, 1):
        yield decode_line(raw, where, i)
