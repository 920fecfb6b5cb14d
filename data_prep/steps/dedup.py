"""Remove exact duplicate (src, tgt) pairs from a training file pair, in bounded memory.

Pass 1 writes one 64-bit blake2b hash per pair to a temporary file (8 bytes a pair, on disk).
Then the hash space is cut into buckets small enough for ``max_memory_mb``; for each bucket the
first occurrence of every hash is marked in a keep-bitmap (1 bit a pair). Pass 2 streams the
input again and writes the kept pairs. Memory is O(bucket + n/8 bytes), never the text.
A 64-bit hash collision (probability ~ n^2 / 2^65, about 3e-6 for 10M pairs) drops one unique pair.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from mtkit.io import LineError, atomic_write, read_pairs

log = logging.getLogger(__name__)
CHUNK = 1 << 20  # hashes read per chunk


def pair_hash(src: str, tgt: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{src.strip()}\t{tgt.strip()}".encode(), digest_size=8).digest(),
                          "little")


def dedup_pairs(src_in: str | os.PathLike, tgt_in: str | os.PathLike, src_out: str | os.PathLike,
                tgt_out: str | os.PathLike, max_memory_mb: int = 512, progress=None) -> Counter:
    """Write the first occurrence of each pair; bad lines (invalid UTF-8, NUL) are dropped and counted."""
    c: Counter = Counter()
    tmpdir = Path(src_out).parent
    tmpdir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=tmpdir, prefix=".dedup.", suffix=".tmp") as hf:
        n = 0
        buf = []
        for a, b in read_pairs(src_in, tgt_in, lenient=True):
            # bad pairs get a hash no line can have: they are dropped in pass 2 anyway
            buf.append(0 if isinstance(a, LineError) or isinstance(b, LineError) else pair_hash(a, b) | 1)
            n += 1
            if len(buf) >= CHUNK:
                hf.write(np.asarray(buf, dtype=np.uint64).tobytes())
                buf.clear()
        if buf:
            hf.write(np.asarray(buf, dtype=np.uint64).tobytes())
        hf.flush()
        keep = np.zeros(n, dtype=bool)
        if n:
            hashes = np.memmap(hf.name, dtype=np.uint64, mode="r", shape=(n,))
            per_bucket = max(1, (max_memory_mb << 20) // 32)  # hash + index + sort scratch
            buckets = max(1, math.ceil(n / per_bucket))
            for bkt in range(buckets):
                lo_hashes, lo_idx = [], []
                for start in range(0, n, CHUNK):
                    h = np.asarray(hashes[start:start + CHUNK])
                    sel = (h % np.uint64(buckets)) == np.uint64(bkt) if buckets > 1 else np.ones(len(h), bool)
                    sel &= h != 0
                    lo_hashes.append(h[sel])
                    lo_idx.append(np.nonzero(sel)[0] + start)
                hb, ib = np.concatenate(lo_hashes), np.concatenate(lo_idx)
                _, first = np.unique(hb, return_index=True)
                keep[ib[first]] = True
            c["dedup_buckets"] = buckets
            del hashes
    keep_list = keep.tolist()  # element access on a list is much cheaper than on a numpy array
    del keep
    with atomic_write(src_out) as fs, atomic_write(tgt_out) as ft:
        for i, (a, b) in enumerate(read_pairs(src_in, tgt_in, lenient=True)):
            c["in"] += 1
            if isinstance(a, LineError) or isinstance(b, LineError):
                c["drop_bad_line"] += 1
                if c["drop_bad_line"] <= 5:
                    log.warning("dropped: %s", a if isinstance(a, LineError) else b)
            elif keep_list[i]:
                fs.write(a + "\n")
                ft.write(b + "\n")
                c["out"] += 1
            else:
                c["drop_duplicate"] += 1
            if progress is not None:
                progress.update()
    return c
