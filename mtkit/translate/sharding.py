"""Contiguous shards of the input for many processes (a SLURM array, Ray, ...), and their merge.

``--shard I/N`` (I from 0 to N-1) translates input lines ``[I*T//N, (I+1)*T//N)`` of the T lines of
the input files (all files together, in order) into ``OUT.shard-I-of-N``. A finished shard also
leaves ``OUT.shard-I-of-N.json`` (its line range, settings, inputs, byte size). :func:`merge_shards`
checks that all N shards are there, complete, from the same input and settings and contiguous, then
writes their concatenation to ``OUT`` atomically.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtkit.errors import InputError, MtkitError
from mtkit.io import atomic_write
from mtkit.translate.output import PARTIAL, RECORD, count_complete

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def bounds(self, total: int) -> tuple[int, int]:
        """[first, end) line numbers (0-based) of this shard among ``total`` lines."""
        return self.index * total // self.count, (self.index + 1) * total // self.count

    def path(self, out: str | Path) -> Path:
        out = Path(out)
        return out.with_name(f"{out.name}.shard-{self.index}-of-{self.count}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"I/N"`` -> Shard(I, N), with 0 <= I < N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise InputError(f"--shard {text!r}: write I/N, the I-th of N shards counted from 0 (e.g. 0/8 ... 7/8)")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or i >= n:
        raise InputError(f"--shard {text}: I must be 0 to N-1 (shards are counted from 0)")
    return Shard(i, n)


def find_shards(out: str | Path) -> dict[int, dict[int, Path]]:
    """Files named ``OUT.shard-I-of-N`` next to ``out``, as {N: {I: path}}."""
    out = Path(out)
    pattern = re.compile(re.escape(out.name) + r"\.shard-(\d+)-of-(\d+)")
    found: dict[int, dict[int, Path]] = {}
    for p in out.parent.glob(f"{out.name}.shard-*-of-*"):
        m = pattern.fullmatch(p.name)
        if m:
            found.setdefault(int(m.group(2)), {})[int(m.group(1))] = p
    return found


def _pending(out: Path, n: int) -> dict[int, Path]:
    pattern = re.compile(re.escape(out.name) + r"\.shard-(\d+)-of-" + str(n) + re.escape(PARTIAL))
    return {int(m.group(1)): p for p in out.parent.glob(f"{out.name}.shard-*-of-{n}{PARTIAL}")
            if (m := pattern.fullmatch(p.name))}


def merge_shards(out: str | Path, inputs: list[dict[str, Any]] | None = None) -> int:
    """Concatenate the complete shards of ``out`` into ``out`` after checking them; returns the lines.

    ``inputs``, when given, are the input files' identities (see ``corpus.input_identity``): the
    shards must have been translated from them.
    """
    out = Path(out)
    found = find_shards(out)
    if not found:
        raise InputError(f"no finished shards {out}.shard-I-of-N found in {out.parent or '.'}; run "
                         f"`mtkit translate --shard I/N --output {out} ...` for every I first")
    if len(found) > 1:
        raise InputError(f"shard files of different counts next to {out}: "
                         + ", ".join(f"{len(v)} of {n}" for n, v in sorted(found.items()))
                         + "; remove the ones of the other run")
    (n, shards), = found.items()
    missing = [i for i in range(n) if i not in shards]
    if missing:
        pending = _pending(out, n)
        detail = []
        for i in missing:
            if i in pending:
                lines, _ = count_complete(pending[i])
                detail.append(f"shard {i} is not finished ({pending[i].name} holds {lines} lines)")
            else:
                detail.append(f"shard {i} has not run")
        raise MtkitError(f"cannot merge {out}: {'; '.join(detail)}. Run the missing shards (with --resume "
                         "to continue a partial one), then merge again")
    records = [_shard_record(shards[i]) for i in range(n)]
    first = records[0]
    same = {k: first.get(k) for k in ("settings", "inputs", "total_lines", "buffer_size")}
    for i, rec in enumerate(records):
        for k, v in same.items():
            if rec.get(k) != v:
                raise MtkitError(f"cannot merge {out}: shard {i} has other {k} than shard 0 "
                                 f"({rec.get(k)!r} vs {v!r}); all shards must come from one run")
    if inputs is not None and first.get("inputs") != inputs:
        raise MtkitError(f"cannot merge {out}: the shards were translated from {first.get('inputs')!r}, "
                         f"not from the input files given now ({inputs!r})")
    expect = 0
    for i, rec in enumerate(records):
        if rec["shard"] != [i, n] or rec["first_line"] != expect:
            raise MtkitError(f"cannot merge {out}: shard {i} starts at line {rec['first_line']}, "
                             f"expected {expect} (shards must be contiguous and in order)")
        lines, end = count_complete(shards[i])
        size = shards[i].stat().st_size
        if lines != rec["lines"] or size != rec["bytes"] or end != size:
            raise MtkitError(f"cannot merge {out}: {shards[i]} has {lines} lines / {size} bytes, its record "
                             f"says {rec['lines']} / {rec['bytes']}: the file changed after the shard "
                             "finished; translate that shard again")
        expect += lines
    if expect != first["total_lines"]:
        raise MtkitError(f"cannot merge {out}: the shards hold {expect} lines, the input {first['total_lines']}")
    with atomic_write(out, "wb") as dst:
        for i in range(n):
            with open(shards[i], "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
    logger.info("merged %d shards into %s (%d lines); the shard files can be deleted", n, out, expect)
    return expect


def _shard_record(path: Path) -> dict[str, Any]:
    rec_path = path.with_name(path.name + RECORD)
    try:
        return json.loads(rec_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MtkitError(f"cannot merge: {rec_path} (the record of a finished shard) is missing or "
                         f"unreadable ({e}); translate that shard again") from None
