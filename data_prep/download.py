"""Downloads that resume, retry, verify and never leave a partial file under the final name.

``mirror``: a local folder laid out as ``MIRROR/<host>/<path of the URL>`` (air-gapped clusters,
tests); files are then copied from it instead of fetched.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from tqdm import tqdm

from data_prep.corpus_files import progress_settings
from mtkit.errors import InputError, MtkitError
from mtkit.io import atomic_write, file_digest, mirror_path

log = logging.getLogger(__name__)


def verify(path: Path, size: int | None = None, md5: str | None = None, sha256: str | None = None,
           what: str = "") -> None:
    if size is not None and path.stat().st_size != size:
        raise InputError(f"{what or path}: size {path.stat().st_size} != expected {size}; "
                         "the download is truncated or the file changed upstream: delete it and re-run")
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want and file_digest(path, algo) != want:
            raise InputError(f"{what or path}: {algo} checksum mismatch (expected {want}); "
                             "delete the file and re-run, or check the mirror")


def fetch(url: str, dest: str | os.PathLike, *, mirror: str | os.PathLike | None = None,
          size: int | None = None, md5: str | None = None, sha256: str | None = None,
          retries: int = 4, timeout: float = 60.0) -> Path:
    """Make ``dest`` hold the file at ``url`` (skipped when present and valid)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        verify(dest, size, md5, sha256, what=str(dest))
        return dest
    part = dest.with_name(dest.name + ".part")
    if mirror is not None:
        src = mirror_path(mirror, url)
        if not src.is_file():
            raise InputError(f"{url}: not in the mirror (expected {src}); copy the file there and re-run")
        shutil.copyfile(src, part)
    else:
        _download(url, part, retries, timeout)
    try:
        verify(part, size, md5, sha256, what=url)
    except InputError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


def fetch_parts(url: str, suffixes: list[str], dest: str | os.PathLike, *,
                mirror: str | os.PathLike | None = None) -> Path:
    """Make ``dest`` the concatenation of ``url + suffix`` for each suffix (a split tarball such as
    UNv1.0.en-ru.tar.gz.00/.01/.02). Each part is fetched (resumable) next to ``dest``; they are joined
    into a temporary file renamed into place, then removed. Skipped when ``dest`` exists."""
    dest = Path(dest)
    if dest.exists():
        return dest
    parts = [fetch(url + sfx, dest.with_name(dest.name + sfx), mirror=mirror) for sfx in suffixes]
    with atomic_write(dest, "wb") as out:
        for p in parts:
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    for p in parts:
        p.unlink(missing_ok=True)
    return dest


def _download(url: str, part: Path, retries: int, timeout: float) -> None:
    delay = 2.0
    for attempt in range(1, retries + 1):
        have = part.stat().st_size if part.exists() else 0
        req = urllib.request.Request(url, headers={"User-Agent": "mtkit-data/0.1"})
        if have:
            req.add_header("Range", f"bytes={have}-")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                if have and r.status != 206:  # server ignored Range: start again
                    have = 0
                total = r.headers.get("Content-Length")
                total = int(total) + have if total else None
                with open(part, "ab" if have else "wb") as f, tqdm(
                        total=total, initial=have, unit="B", unit_scale=True, desc=Path(urlparse(url).path).name,
                        **progress_settings()) as bar:
                    for chunk in iter(lambda: r.read(1 << 20), b""):
                        f.write(chunk)
                        bar.update(len(chunk))
            return
        except urllib.error.HTTPError as e:
            if e.code == 416:  # range beyond the end: we already have it all
                return
            if 400 <= e.code < 500 and e.code != 429:
                raise MtkitError(f"{url}: HTTP {e.code}; the source may have moved (see docs/data_prep.md)") from None
            err: Exception = e
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            err = e
        if attempt == retries:
            raise MtkitError(f"{url}: download failed after {retries} tries ({err}); re-run to resume, "
                             "or use --mirror DIR with the file at DIR/<host>/<path>") from None
        log.warning("%s: %s; retrying in %.0f s (%d/%d)", url, err, delay, attempt, retries)
        time.sleep(delay)
        delay *= 2
