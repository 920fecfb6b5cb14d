"""`mtkit data ml50`: the ML50 benchmark from its public sources (or a --mirror folder).

Steps (``--steps``, default all but binarize unless an SPM option is given):
  download -> extract (OUT/raw, fairseq's {split}.{xx}-en_XX.{lang} layout) -> dedup (OUT/dedup)
  -> clean (OUT/clean: overlap with any valid/test removed, filters) -> binarize (OUT/bin).
Per-language problems (a missing mirror file, a manual source not in place, a language with no
upstream script) are reported in OUT/manifest.json and on stderr, never silently skipped.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from tqdm import tqdm

from data_prep.common import (
    StepCache,
    atomic_open,
    clean_stale_tmp,
    setup_progress,
    versions,
    write_json,
)
from data_prep.download import fetch, fetch_parts
from data_prep.ml50_sources import PLANS, Plan, Src
from data_prep.sources import iwslt, plain, ted, tmx, wmt
from data_prep.sources.sacrebleu_sets import testset_files
from data_prep.steps.filters import FilterSettings
from data_prep.steps.pipeline import run_steps
from mtkit.errors import InputError, MtkitError
from mtkit.langs import ML50_LANGS, parse_lang_list, to_mbart

log = logging.getLogger(__name__)
EN = "en_XX"
ALL_STEPS = ("download", "extract", "dedup", "clean", "binarize")


class Ctx:
    def __init__(self, out: Path, mirror: str | None, verify: bool, manual: Path | None = None):
        self.out, self.mirror, self.verify = out, mirror, verify
        self.downloads = out / "downloads"
        self.sacrebleu = out / "downloads" / "sacrebleu"
        self.manual = manual if manual is not None else out / "manual"

    def local(self, url: str) -> Path:
        u = urlparse(url)
        return self.downloads / u.netloc / u.path.lstrip("/")

    def file_of(self, s: Src) -> Path | None:
        """The local file a source reads: a download, or a manual source in the manual folder."""
        if s.args.get("manual"):
            return self.manual / s.args["manual"]
        return self.local(s.url) if s.url else None


def _present(s: Src, ctx: Ctx) -> bool:
    """Manual sources are read only when in place (their absence is reported by check_manual)."""
    return not s.args.get("manual") or (ctx.manual / s.args["manual"]).exists()


def _sources(plan: Plan) -> list[Src]:
    return plan.train + plan.valid + plan.test + ([plan.halves] if plan.halves else [])


def download(plan: Plan, ctx: Ctx) -> list[Path]:
    files = []
    for s in _sources(plan):
        if s.url and s.args.get("parts"):
            files.append(fetch_parts(s.url, s.args["parts"], ctx.local(s.url), mirror=ctx.mirror))
        elif s.url:
            files.append(fetch(s.url, ctx.local(s.url), mirror=ctx.mirror))
        elif s.kind == "sacrebleu":
            testset_files(s.args["name"], s.args["langpair"], ctx.sacrebleu, ctx.mirror, ctx.verify)
    return files


def read_source(s: Src, xx: str, ctx: Ctx) -> Iterator[tuple[str, str]]:
    """(xx, en) pairs of one source."""
    a = s.args
    if s.kind == "sacrebleu":
        src, ref = testset_files(a["name"], a["langpair"], ctx.sacrebleu, ctx.mirror, ctx.verify)
        en_first = a["langpair"].startswith("en-")
        pairs = plain.read_parallel(ref, None, None, src_archive=src)  # (src, ref)
        for x, y in pairs:
            yield (y, x) if en_first else (x, y)
        return
    f = ctx.file_of(s)
    if s.kind == "tmx":
        yield from tmx.read_tmx(f, a["xx"], "en", member=a.get("member"))
    elif s.kind == "plain":
        yield from _swap(plain.read_parallel(f, a["en"], a["xx"]))
    elif s.kind == "plain_dir":
        yield from plain.read_parallel_dir(f, a["dir"], a["xx"], "en")
    elif s.kind == "tsv":
        yield from wmt.read_tsv(f, a.get("member"), a["xx_col"], a["en_col"], sep=a.get("sep", "\t"))
    elif s.kind == "ted":
        yield from ted.read_ted(f, a["member"], a["col"], "en")
    elif s.kind == "iwslt_train":
        p, x = a["pair"], a["xx"]
        yield from iwslt.read_train(f, a.get("xx_member", f"{p}/train.tags.{p}.{x}"),
                                    a.get("en_member", f"{p}/train.tags.{p}.en"), a.get("keep_titles", True))
    elif s.kind == "iwslt_xml":
        yield from iwslt.read_xml_pair(f, a["xx"], a["en"])
    elif s.kind == "xlf":
        rows = wmt.read_xlf(f, a.get("member"))
        yield from rows if a["xx"] == "source" else _swap(rows)
    else:
        raise MtkitError(f"unknown source kind {s.kind!r}")


def _swap(pairs):
    for en, xx in pairs:
        yield xx, en


def _write(raw: Path, split: str, xx: str, rows: Iterator[tuple[str, str]]) -> int:
    n = 0
    with atomic_open(raw / f"{split}.{xx}-{EN}.{xx}") as fx, atomic_open(raw / f"{split}.{xx}-{EN}.{EN}") as fe:
        for x, e in rows:
            if "\n" in x or "\n" in e:
                x, e = " ".join(x.split()), " ".join(e.split())
            fx.write(x + "\n")
            fe.write(e + "\n")
            n += 1
    return n


def _chain(srcs: list[Src], xx: str, ctx: Ctx) -> Iterator[tuple[str, str]]:
    for s in srcs:
        if _present(s, ctx):
            yield from read_source(s, xx, ctx)


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
    elif any(_present(s, ctx) for s in plan.train):
        counts["train"] = _write(raw, "train", xx, _chain(plan.train, iso, ctx))
    if plan.halves is not None:
        rows = list(read_source(plan.halves, iso, ctx))
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


def build(out: str | os.PathLike, langs: list[str] | None = None, mirror: str | None = None,
          steps: tuple[str, ...] | None = None, manual_dir: str | None = None, workers: int = 1,
          verify_checksums: bool = True, filters: FilterSettings | None = None,
          spm_model: str | None = None, spm_vocab_size: int | None = None, max_memory_mb: int = 512) -> dict:
    """Build the ML50 corpus into ``out``; returns the manifest (also ``out/manifest.json``)."""
    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = [c for c in ML50_LANGS if c != EN and (langs is None or c in {to_mbart(x) for x in langs})]
    if steps is None:
        steps = ALL_STEPS if (spm_model or spm_vocab_size) else ALL_STEPS[:-1]
    bad = [s for s in steps if s not in ALL_STEPS]
    if bad:
        raise InputError(f"unknown step(s) {bad}; choose from {', '.join(ALL_STEPS)}")
    manual = Path(manual_dir) if manual_dir else out / "manual"
    ctx = Ctx(out, mirror, verify_checksums, manual)
    (out / "raw").mkdir(exist_ok=True)
    clean_stale_tmp(out / "raw")
    report: dict[str, dict] = {}
    for xx in tqdm(wanted, desc="ml50 languages", unit="lang", **setup_progress()):
        plan = PLANS[xx]
        r: dict = {"not_automated": plan.not_automated}
        report[xx] = r
        if plan.unavailable:
            r["status"] = "unavailable"
            r["reason"] = plan.unavailable
            log.warning("%s: not built: %s", xx, plan.unavailable)
            continue
        for part in plan.not_automated:
            log.warning("%s: part of fairseq's training data not automated: %s", xx, part)
        r["manual"] = check_manual(plan, manual)
        for m in r["manual"]:
            if not m["present"]:
                log.warning("%s: manual source missing: %s\n  -> %s", xx, m["path"], m["instructions"])
        try:
            files: list[Path] = []
            if "download" in steps:
                files = download(plan, ctx)
            if "extract" in steps:
                if not files:
                    files = [ctx.local(s.url) for s in _sources(plan) if s.url]
                files = files + [ctx.file_of(s) for s in plan.train if s.args.get("manual")]
                cache = StepCache(out / "raw", f"extract.{xx}")
                key = StepCache.key([], {"plan": repr(plan), "files": [(str(f), os.path.getsize(f), os.path.getmtime(f))
                                                                      for f in files if f.exists()]})
                outs = [out / "raw" / f"{s}.{xx}-{EN}.{x}" for s in ("train", "valid", "test") for x in (xx, EN)]
                if cache.is_done(key, [p for p in outs if p.exists()] or outs):
                    r["raw"] = cache.info()
                else:
                    r["raw"] = extract(xx, plan, ctx)
                    cache.record(key, [p for p in outs if p.exists()], r["raw"])
            r["status"] = "ok" if all(m["present"] for m in r["manual"]) else "partial (manual source missing)"
        except (InputError, MtkitError) as e:
            r["status"] = "failed"
            r["error"] = str(e)
            log.error("%s: %s", xx, e)
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
    manifest["seconds"] = round(time.time() - t0, 1)
    write_json(out / "manifest.json", manifest)
    return manifest


# --- CLI ----------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="work folder (downloads/, raw/, dedup/, clean/, bin/)")
    p.add_argument("--langs", type=parse_lang_list, default=None, help="ML50 languages (default: all 51)")
    p.add_argument("--mirror", default=None,
                   help="read every file from DIR/<host>/<path of URL> instead of the network")
    p.add_argument("--steps", default=None,
                   help=f"comma list from {','.join(ALL_STEPS)} (default: all; binarize only with an SPM option)")
    p.add_argument("--manual-dir", default=None, help="where manual sources (CzEng, Yandex, CWMT) are placed "
                                                      "(default OUT/manual)")
    p.add_argument("--no-checksums", action="store_true", help="do not check sacrebleu md5 sums of mirror files")
    p.add_argument("--lid-model", default=None, help="fastText LID model (lid.176.bin); needs `pip install fasttext`")
    p.add_argument("--max-chars", type=int, default=1000)
    p.add_argument("--max-ratio", type=float, default=3.0, help="max length ratio (chars) of the two sides")
    p.add_argument("--max-memory-mb", type=int, default=512, help="memory budget of dedup")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--spm-model", default=None, help="SPM model for binarize (mBART's sentence.bpe.model)")
    g.add_argument("--spm-vocab-size", type=int, default=None, help="train an SPM model of this size")
    p.add_argument("--workers", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    from data_prep.cli import print_summary

    steps = tuple(s.strip() for s in args.steps.split(",")) if args.steps else None
    fs = FilterSettings(max_chars=args.max_chars, max_ratio=args.max_ratio, lid_model=args.lid_model)
    m = build(args.out, langs=args.langs, mirror=args.mirror, steps=steps, manual_dir=args.manual_dir,
              workers=args.workers, verify_checksums=not args.no_checksums, filters=fs,
              spm_model=args.spm_model, spm_vocab_size=args.spm_vocab_size, max_memory_mb=args.max_memory_mb)
    status = {k: v.get("status") for k, v in m["languages"].items()}
    print_summary(status)
    return 0 if all(s and s.startswith("ok") for s in status.values() if s != "unavailable") else 1

