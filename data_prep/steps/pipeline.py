"""Run the streaming steps over a raw folder: ``raw/ -> dedup/ -> clean/`` (per direction, in parallel).

- ``dedup``: exact duplicate training pairs removed (valid/test copied unchanged), bounded memory.
- ``clean``: training pairs overlapping ANY valid/test sentence of ANY direction removed (fairseq's
  remove_valid_test_in_train.py), then bad/empty lines, length, length-ratio and optional LID
  filters. valid/test are copied unchanged.

Each (step, direction) records a digest of its inputs and settings; a re-run skips it when they
are unchanged. Outputs are atomic, so a killed run leaves old or new files, never half files, and
the re-run redoes exactly the unfinished work (byte-identical results).
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from data_prep.corpus_files import list_directions, progress_settings
from data_prep.step_cache import StepCache
from data_prep.steps.dedup import dedup_pairs
from data_prep.steps.filters import FilterSettings, filter_pairs
from data_prep.steps.overlap import heldout_hashes
from mtkit.io import atomic_copy, clean_stale_tmp, versions, write_json

log = logging.getLogger(__name__)
STEPS = ("dedup", "clean")


def _run_one(step: str, src_dir: str, dst_dir: str, src: str, tgt: str, settings: dict,
             heldout: set[int] | None) -> dict:
    src_dir_p, dst_dir_p = Path(src_dir), Path(dst_dir)
    counts: dict[str, dict] = {}
    for split in ("valid", "test"):
        for lang in (src, tgt):
            p = src_dir_p / f"{split}.{src}-{tgt}.{lang}"
            if p.exists():
                atomic_copy(p, dst_dir_p / p.name)
    a, b = (src_dir_p / f"train.{src}-{tgt}.{x}" for x in (src, tgt))
    oa, ob = (dst_dir_p / f"train.{src}-{tgt}.{x}" for x in (src, tgt))
    if a.exists() and b.exists():
        if step == "dedup":
            c = dedup_pairs(a, b, oa, ob, max_memory_mb=settings["max_memory_mb"])
        else:
            fs = FilterSettings(**settings["filters"])
            c = filter_pairs(a, b, oa, ob, src, tgt, fs, heldout=heldout)
        counts["train"] = dict(c)
    return counts


def _heldout_digest(folder: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    for x in sorted(heldout_hashes([folder])):
        h.update(x.to_bytes(8, "big"))
    return h.hexdigest()


def run_steps(raw: str | os.PathLike, work: str | os.PathLike, steps: tuple[str, ...] = STEPS,
              filters: FilterSettings | None = None, max_memory_mb: int = 512, workers: int = 1,
              langs: list[str] | None = None) -> dict:
    """Run ``steps`` (subset of dedup, clean) from ``raw`` into ``work/dedup`` and ``work/clean``.

    ``langs`` restricts the directions to those whose non-English side is listed. Returns the
    manifest (also written to ``work/manifest.steps.json``).
    """
    work = Path(work)
    filters = filters or FilterSettings()
    settings = {"max_memory_mb": max_memory_mb, "filters": asdict(filters)}
    manifest: dict = {"steps": {}, "settings": settings, "versions": versions()}
    prev = Path(raw)
    for step in STEPS:
        out = work / step
        if step not in steps:
            if out.is_dir():
                prev = out
            continue
        out.mkdir(parents=True, exist_ok=True)
        clean_stale_tmp(out)
        dirs = [d for d in list_directions(prev) if not langs or set(d) & set(langs)]
        heldout = heldout_hashes([prev]) if step == "clean" else None
        # the held-out set of the whole folder is an input of every direction's clean step
        extra = _heldout_digest(prev) if step == "clean" else ""
        todo, results = [], {}
        for src, tgt in dirs:
            inputs = sorted(p for p in prev.glob(f"*.{src}-{tgt}.*") if not p.name.startswith("."))
            cache = StepCache(out, f"{step}.{src}-{tgt}")
            step_settings = {"step": step, "heldout": extra, **(settings if step == "clean" else
                                                                   {"mem": max_memory_mb})}
            key = cache.key(inputs, step_settings)
            outputs = [out / p.name for p in inputs]
            if cache.is_done(key, outputs):
                results[f"{src}-{tgt}"] = cache.info()
            else:
                todo.append((src, tgt, cache, key, outputs))
        log.info("%s: %d of %d directions to do", step, len(todo), len(dirs))
        bar = tqdm(total=len(todo), desc=step, unit="direction", **progress_settings())
        ex = ProcessPoolExecutor(workers) if workers > 1 and len(todo) > 1 else None
        try:
            futs = [(t, (ex.submit if ex else _immediate)(_run_one, step, str(prev), str(out), t[0], t[1],
                                                           settings, heldout)) for t in todo]
            for (src, tgt, cache, key, outputs), fut in futs:
                counts = fut.result()
                cache.record(key, outputs, counts)
                results[f"{src}-{tgt}"] = counts
                bar.update()
        finally:
            bar.close()
            if ex:
                ex.shutdown(cancel_futures=True)
        manifest["steps"][step] = dict(sorted(results.items()))
        totals: Counter = Counter()
        for c in results.values():
            totals.update(c.get("train", {}))
        log.info("%s: %s", step, dict(totals))
        prev = out
    write_json(work / "manifest.steps.json", manifest)
    return manifest


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def _immediate(fn, *args):
    return _Done(fn(*args))
