"""WMT / IWSLT test sets through sacrebleu's dataset API (``sacrebleu.DATASETS``).

sacrebleu fixes its cache folder when it is imported (``$SACREBLEU``), so each query runs in a child
process with ``SACREBLEU`` pointing at our cache. With a mirror, the tarballs are copied from
``MIRROR/<host>/<path>`` into the cache (checked against sacrebleu's md5 unless told not to) and
extracted, which sacrebleu itself only does after a download; sacrebleu then works offline.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mtkit.errors import InputError

_CHILD = r"""
import json, os, sys
from mtkit.io import atomic_copy, file_digest, mirror_path
name, langpair, mirror, verify = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
from sacrebleu.dataset import DATASETS
from sacrebleu.utils import extract_tarball
if name not in DATASETS:
    print(json.dumps({"error": f"sacrebleu has no test set {name!r}"})); sys.exit(0)
ds = DATASETS[name]
if langpair not in ds.langpairs:
    print(json.dumps({"error": f"sacrebleu {name} has no pair {langpair} (has {sorted(ds.langpairs)[:12]})"})); sys.exit(0)
if mirror:
    os.makedirs(ds._rawdir, exist_ok=True)
    md5s = ds.md5 or [None] * len(ds.data)
    for url, md5 in zip(ds.data, md5s):
        dst = os.path.join(ds._rawdir, ds._get_tarball_filename(url))
        if os.path.exists(dst) and os.path.getsize(dst) > 0:
            continue
        src = mirror_path(mirror, url)
        if not src.is_file():
            print(json.dumps({"error": f"{url}: not in the mirror (expected {src})"})); sys.exit(0)
        if verify and md5 and file_digest(src, "md5") != md5:
            print(json.dumps({"error": f"{src}: md5 differs from sacrebleu's ({md5}); wrong or changed file"})); sys.exit(0)
        atomic_copy(src, dst)
        extract_tarball(dst, ds._rawdir)
print(json.dumps({"src": ds.get_source_file(langpair), "refs": ds.get_reference_files(langpair)}))
"""


def testset_files(name: str, langpair: str, cache: str | os.PathLike, mirror: str | os.PathLike | None = None,
                  verify: bool = True) -> tuple[Path, Path]:
    """(source file, first reference file) of a sacrebleu test set, e.g. ('wmt19', 'kk-en')."""
    env = dict(os.environ, SACREBLEU=str(cache))
    res = subprocess.run([sys.executable, "-c", _CHILD, name, langpair, str(mirror or ""), "1" if verify else "0"],
                         capture_output=True, text=True, env=env)
    try:
        out = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise InputError(f"sacrebleu {name} {langpair}: failed:\n{res.stderr[-1500:]}") from None
    if "error" in out:
        raise InputError(f"sacrebleu {name} {langpair}: {out['error']}")
    return Path(out["src"]), Path(out["refs"][0])
