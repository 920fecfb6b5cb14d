"""`mtkit data ml50`: the ML50 benchmark from its public sources (or a --mirror folder).

Steps (``steps``, default all but binarize unless an SPM option is given):
  download -> extract (OUT/raw, fairseq's {split}.{xx}-en_XX.{lang} layout) -> dedup (OUT/dedup)
  -> clean (OUT/clean: overlap with any valid/test removed, filters) -> binarize (OUT/bin).
Per-language problems (a missing mirror file, a manual source not in place, a language with no
upstream script) are reported in OUT/manifest.json and on stderr, never silently skipped.
"""
from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from data_prep.corpora.ml50_table import PLANS, Plan, Src
from data_prep.corpus_files import SPLITS, corpus_file, progress_settings
from data_prep.step_cache import StepCache
from data_prep.steps.filters import FilterSettings
from data_prep.steps.pipeline import run_steps
from mtkit.errors import InputError, MtkitError
from mtkit.io import atomic_write, clean_stale_tmp, mirror_path, versions, write_json
from mtkit.langs import ML50_LANGS, to_mbart

log = logging.getLogger(__name__)
EN = "en_XX"
ALL_STEPS = ("download", "extract", "dedup", "clean", "binarize")


class Ctx:
    """Where a build keeps its downloads and finds its mirror and manual sources."""

    def __init__(self, out: Path, mirror: str | None, verify: bool, manual: Path | None = None):
        self.out, self.mirror, self.verify = out, mirror, verify
        self.downloads = out / "downloads"
        self.sacrebleu = out / "downloads" / "sacrebleu"
        self.manual = manual if manual is not None else out / "manual"

    def local(self, url: str) -> Path:
        """Downloads are laid out as a mirror (``downloads/<host>/<path>``), so they can serve as one."""
        return mirror_path(self.downloads, url)


def download(plan: Plan, ctx: Ctx) -> list[Path]:
    return [p for p in (s.fetch(ctx) for s in plan.sources() if s.present(ctx)) if p is not None]


def _chain(srcs: list[Src], xx: str, ctx: Ctx) -> Iterator[tuple[str, str]]:
    for s in srcs:
        if s.present(ctx):
            yield from s.read(ctx, xx)


def _write(raw: Path, split: str, xx: str, rows: Iterator[tuple[str, str]]) -> int:
    n = 0
    with atomic_write(raw / f"{split}.{xx}-{EN}.{xx}") as fx, atomic_write(raw / f"{split}.{xx}-{EN}.{EN}") as fe:
        for x, e in rows:
            if "\n" in x or "\n" in e:
                x, e = " ".join(x.split()), " ".join(e.split())
            fx.write(x + "\n")
            fe.write(e + "\n")
            n += 1
    return n


def extract(xx: str, plan: Plan, ctx: Ctx) -> dict[str, int]:
    """Write OUT/raw/{train,valid,test}.{xx}-en_XX.* for one language."""
    raw = ctx.out / "raw"
    counts = {}
    iso = xx.split("_")[0]
    if plan.holdout_valid:
        # fairseq: concatenate, seeded shuffle (seed 43), first N lines -> valid, rest -> train
        n = _write(raw, "all", xx, _chain(plan.train, iso, ctx))
        rng = random.Random(43)
        order = list(range(n))
        rng.shuffle(order)
        k = min(plan.holdout_valid, n // 10)  # tiny corpora keep 90% for training
        valid_idx = set(order[:k])
        rows_x = (raw / f"all.{xx}-{EN}.{xx}").read_text(encoding="utf-8").splitlines()
        rows_e = (raw / f"all.{xx}-{EN}.{EN}").read_text(encoding="utf-8").splitlines()
        counts["valid"] = _write(raw, "valid", xx, ((rows_x[i], rows_e[i]) for i in order[:k]))
        counts["train"] = _write(raw, "train", xx, ((rows_x[i], rows_e[i]) for i in range(n) if i not in valid_idx))
        for p in (raw / f"all.{xx}-{EN}.{xx}", raw / f"all.{xx}-{EN}.{EN}"):
            p.unlink(missing_ok=True)
    elif any(s.present(ctx) for s in plan.train):
        counts["train"] = _write(raw, "train", xx, _chain(plan.train, iso, ctx))
    if plan.halves is not None:
        rows = list(plan.halves.read(ctx, iso))
        counts["valid"] = _write(raw, "valid", xx, iter(rows[0::2]))  # split -n r/1/2
        counts["test"] = _write(raw, "test", xx, iter(rows[1::2]))  # split -n r/2/2
    for split in ("valid", "test"):
        srcs = getattr(plan, split)
        if srcs:
            counts[split] = _write(raw, split, xx, _chain(srcs, iso, ctx))
    return counts


def check_manual(plan: Plan, manual_dir: Path) -> list[dict]:
    out = []
    for rel, how in plan.manual:
        p = manual_dir / rel
        out.append({"path": str(p), "present": p.exists(), "instructions": how})
    return out


def _extract_cached(xx: str, plan: Plan, ctx: Ctx, files: list[Path]) -> dict[str, int]:
    """:func:`extract`, skipped when the plan and its files (size, mtime) are unchanged."""
    raw = ctx.out / "raw"
    files = files + [s.file(ctx) for s in plan.train if s.manual]
    cache = StepCache(raw, f"extract.{xx}")
    key = StepCache.key([], {"plan": repr(plan), "files": [(str(f), os.path.getsize(f), os.path.getmtime(f))
                                                          for f in files if f.exists()]})
    outs = [corpus_file(raw, s, xx, EN, x) for s in SPLITS for x in (xx, EN)]
    if cache.is_done(key, [p for p in outs if p.exists()] or outs):
        return cache.info()
    counts = extract(xx, plan, ctx)
    cache.record(key, [p for p in outs if p.exists()], counts)
    return counts


def build_language(xx: str, ctx: Ctx, steps: tuple[str, ...]) -> dict:
    """Download and extract one language; returns its report (status, counts, manual sources)."""
    plan = PLANS[xx]
    r: dict = {"not_automated": plan.not_automated}
    if plan.unavailable:
        log.warning("%s: not built: %s", xx, plan.unavailable)
        return {**r, "status": "unavailable", "reason": plan.unavailable}
    for part in plan.not_automated:
        log.warning("%s: part of fairseq's training data not automated: %s", xx, part)
    r["manual"] = check_manual(plan, ctx.manual)
    for m in r["manual"]:
        if not m["present"]:
            log.warning("%s: manual source missing: %s\n  -> %s", xx, m["path"], m["instructions"])
    try:
        files = download(plan, ctx) if "download" in steps else []
        if "extract" in steps:
            files = files or [ctx.local(s.url) for s in plan.sources() if s.url]
            r["raw"] = _extract_cached(xx, plan, ctx, files)
        r["status"] = "ok" if all(m["present"] for m in r["manual"]) else "partial (manual source missing)"
    except (InputError, MtkitError) as e:
        r["status"] = "failed"
        r["error"] = str(e)
        log.error("%s: %s", xx, e)
    return r


def resolve_steps(steps: tuple[str, ...] | None, binarize: bool) -> tuple[str, ...]:
    if steps is None:
        return ALL_STEPS if binarize else ALL_STEPS[:-1]
    bad = [s for s in steps if s not in ALL_STEPS]
    if bad:
        raise InputError(f"unknown step(s) {bad}; choose from {', '.join(ALL_STEPS)}")
    return steps


def build(out: str | os.PathLike, langs: list[str] | None = None, mirror: str | None = None,
          steps: tuple[str, ...] | None = None, manual_dir: str | None = None, workers: int = 1,
          verify_checksums: bool = True, filters: FilterSettings | None = None,
          spm_model: str | None = None, spm_vocab_size: int | None = None, max_memory_mb: int = 512) -> dict:
    """Build the ML50 corpus into ``out``; returns the manifest (also ``out/manifest.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = [c for c in ML50_LANGS if c != EN and (langs is None or c in {to_mbart(x) for x in langs})]
    steps = resolve_steps(steps, bool(spm_model or spm_vocab_size))
    ctx = Ctx(out, mirror, verify_checksums, Path(manual_dir) if manual_dir else out / "manual")
    (out / "raw").mkdir(exist_ok=True)
    clean_stale_tmp(out / "raw")
    report = {xx: build_language(xx, ctx, steps)
              for xx in tqdm(wanted, desc="ml50 languages", unit="lang", **progress_settings())}
    manifest: dict = {"command": "mtkit data ml50", "langs": wanted, "steps": list(steps), "mirror": mirror,
                      "versions": versions(), "languages": report}
    built = [x for x in wanted if report[x].get("status", "").startswith(("ok", "partial"))]
    if {"dedup", "clean"} & set(steps) and built:
        m = run_steps(out / "raw", out, steps=tuple(s for s in ("dedup", "clean") if s in steps),
                      filters=filters, max_memory_mb=max_memory_mb, workers=workers, langs=built)
        manifest["steps_counts"] = m["steps"]
        manifest["filters"] = m["settings"]
    if "binarize" in steps and built:
        from data_prep.binarize import binarize

        src = out / "clean" if (out / "clean").is_dir() else out / "raw"
        manifest["binarize"] = binarize(src, out / "bin", spm_model=spm_model, spm_vocab_size=spm_vocab_size,
                                        workers=workers)["directions"]
    write_json(out / "manifest.json", manifest)
    return manifest
