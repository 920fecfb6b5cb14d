"""Downstream scaling laws of translation (Isik et al. 2024) measured with mtkit: pretrain one model on
a geometric grid of pretraining data sizes D, finetune every point on one translation task with the
mtkit tune engine (grid search), and fit the BLEU log-law and the cross-entropy power law with
``mtkit scaling fit``, per alignment condition (pretraining text with / without the task's languages).

    python recipes/scaling/sweep.py --raw RAW --work WORK --out OUT [--profile mini|gpu] [--dry | --smoke]

RAW is a text folder as ``mtkit data`` writes it (``{split}.{src}-{tgt}.{lang}``). Stages, each
resumable (start the same command again after a kill; finished work is reused):

1. data: every training pair that contains a valid or test sentence of the finetuning direction is
   dropped (so no pretraining text holds one), then ``mtkit data binarize --mono`` (shared SPM,
   parallel and monolingual databins). ``data.json``: what was dropped, tokens per language, the
   language shares and Isik et al.'s alignment score of each condition.
2. pretrain: one denoising run per condition with ``multilingual_denoising_mtkit --no-resampling``
   (each block seen at most once: D counts distinct tokens) and ``--train-langs`` (every language
   keeps its token, so both conditions share one vocabulary), fixed blocks and batch, inverse-sqrt lr;
   trained in segments that end at the update counts u_max / 2^k and keep a checkpoint there (the
   checkpoints of one run are the D points, as Isik et al. do). D(u) sums fairseq's per-update token
   counts (``--log-interval 1``); the largest D stays below one epoch of the smaller condition.
3. finetune: ``mtkit.tune.run_configs`` over every checkpoint plus a from-scratch baseline, the same
   updates and seed for each; each trial scores BLEU / chrF++ on the test split (beam search,
   mtkit's scorer). Then the downstream cross-entropy of every final checkpoint on the test split
   (teacher forcing, nats per target token).
4. fit: per condition, ``mtkit scaling fit`` with ``--law bleu`` and ``--law ce``, fitted on all runs
   but the largest D (its prediction error) and on all but the two largest (as Isik et al., who fit
   on the 4 smallest of their points).

Outputs in OUT: runs.csv, runs_<condition>.csv, data.json, pretrain.json, fits/*.json and *.png,
overview.png, summary.md, commands.txt, sweep.json.

``--dry`` prints the whole plan (data, every fairseq command, the D grid, the finetuning grid, the fit
commands) and runs nothing; ``--smoke`` runs every stage at a tiny size (a pipeline check).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import logging
import math
import os
import shlex
import subprocess
import sys
import time
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtkit.errors import InputError, MtkitError
from mtkit.io import (
    atomic_copy,
    read_lines,
    read_pairs,
    versions,
    write_bytes,
    write_json,
    write_lines,
    write_text,
)

logger = logging.getLogger("scaling-sweep")

TINY_ARCH = ["--encoder-layers", "2", "--decoder-layers", "2", "--encoder-embed-dim", "128",
             "--decoder-embed-dim", "128", "--encoder-ffn-embed-dim", "512", "--decoder-ffn-embed-dim", "512",
             "--encoder-attention-heads", "4", "--decoder-attention-heads", "4",
             "--max-source-positions", "256", "--max-target-positions", "256"]
BASE_ARCH = ["--encoder-layers", "6", "--decoder-layers", "6", "--encoder-embed-dim", "512",
             "--decoder-embed-dim", "512", "--encoder-ffn-embed-dim", "2048", "--decoder-ffn-embed-dim", "2048",
             "--encoder-attention-heads", "8", "--decoder-attention-heads", "8",
             "--max-source-positions", "1024", "--max-target-positions", "1024"]


@dataclass(frozen=True)
class Profile:
    """Every size of the sweep. ``nominal_tokens``: the corpus tokens per language the plan of
    ``--dry`` assumes when the data is not there yet (the real run reads them from the databin)."""

    name: str
    direction: tuple[str, str]
    conditions: dict[str, tuple[str, ...]]  # name -> pretraining languages
    arch: tuple[str, ...]
    device: tuple[str, ...]
    spm_vocab: int
    max_pieces: int | None
    max_train_lines: int | None  # per training file (None: all)
    tokens_per_sample: int  # block length (fairseq adds <s> and [lang] inside it)
    batch_size: int  # blocks per GPU/CPU step
    update_freq: int
    points: int  # D points per condition
    epoch_fraction: float  # D_max as a fraction of the smaller condition's blocks
    max_pretrain_tokens: float  # upper bound on D_max
    pretrain_lr: float
    pretrain_warmup: int
    ft_updates: int
    ft_max_tokens: int
    ft_update_freq: int
    ft_lr: float
    ft_warmup: int
    ft_seeds: tuple[int, ...]
    test_lines: int | None  # None: the whole test split
    beam: int
    cpus_per_trial: float
    gpus_per_trial: float
    threads: int
    nominal_tokens: dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_update(self) -> int:
        return self.tokens_per_sample * self.batch_size * self.update_freq


MINI = Profile(
    name="mini", direction=("en_XX", "ro_RO"),
    conditions={"with": ("en_XX", "ro_RO"), "without": ("de_DE", "es_XX", "fr_XX", "gl_ES")},
    arch=tuple(TINY_ARCH), device=("--cpu",), spm_vocab=2000, max_pieces=40, max_train_lines=None,
    tokens_per_sample=128, batch_size=4, update_freq=1, points=6, epoch_fraction=0.97, max_pretrain_tokens=1e12,
    pretrain_lr=1e-3, pretrain_warmup=20,
    ft_updates=1000, ft_max_tokens=1024, ft_update_freq=1, ft_lr=1e-3, ft_warmup=50, ft_seeds=(1,),
    test_lines=None, beam=4, cpus_per_trial=1.0, gpus_per_trial=0.0, threads=1,
    nominal_tokens={"en_XX": 6.0e5, "ro_RO": 3.2e5, "de_DE": 3.5e5, "es_XX": 3.3e5, "fr_XX": 3.3e5, "gl_ES": 2.3e5},
)
GPU = Profile(
    # en->de, not en->ro: on ML50's training sides Romanian is ~0.3 % of en+ro text (alignment score
    # 0.70, close to English-only pretraining), German a third of en+de (about 0.94, like mini's en+ro)
    name="gpu", direction=("en_XX", "de_DE"),
    conditions={"with": ("de_DE", "en_XX"), "without": ("es_XX", "fr_XX", "ro_RO")},
    arch=tuple(BASE_ARCH), device=("--fp16",), spm_vocab=32000, max_pieces=None, max_train_lines=None,
    tokens_per_sample=512, batch_size=32, update_freq=4, points=6, epoch_fraction=0.95, max_pretrain_tokens=2.2e9,
    pretrain_lr=7e-4, pretrain_warmup=1000,
    ft_updates=4000, ft_max_tokens=8192, ft_update_freq=2, ft_lr=3e-4, ft_warmup=500, ft_seeds=(1, 2, 3),
    test_lines=None, beam=5, cpus_per_trial=4.0, gpus_per_trial=0.5, threads=4,
    # rough sizes of ML50's training sides after mtkit data ml50's clean step, for the --dry plan only
    nominal_tokens={"en_XX": 6.0e9, "de_DE": 2.0e9, "es_XX": 8.0e8, "fr_XX": 1.2e9, "ro_RO": 1.8e7},
)
SMOKE = dict(points=5, epoch_fraction=0.1, max_train_lines=3000, ft_updates=4, test_lines=8, beam=2)
PROFILES = {"mini": MINI, "gpu": GPU}


def fairseq_bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


# ---------------------------------------------------------------------------------------------- data

def norm(text: str) -> str:
    """The form SentencePiece's default normaliser (nmt_nfkc) sees, near enough to compare sentences:
    NFKC ("Rename\u2026" and "Rename..." are one sentence to the model) and collapsed whitespace."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def held_out_sentences(raw: Path, direction: tuple[str, str]) -> set[str]:
    """Every valid and test sentence of the finetuning direction, both sides (``norm`` form)."""
    src, tgt = direction
    held: set[str] = set()
    for split in ("valid", "test"):
        files = [p for pair in (f"{src}-{tgt}", f"{tgt}-{src}") for p in raw.glob(f"{split}.{pair}.*")]
        if not files:
            continue
        for path in files:
            held.update(norm(line) for line in read_lines(path) if line.strip())
    if not held:
        raise InputError(f"{raw}: no valid/test files of {src}-{tgt} (valid.{src}-{tgt}.{src}, ...)")
    return held


def filter_raw(raw: Path, out: Path, direction: tuple[str, str], max_lines: int | None = None) -> dict[str, Any]:
    """Copy RAW to OUT without the training pairs that hold a held-out sentence of ``direction``
    (and at most ``max_lines`` training pairs per direction)."""
    held = held_out_sentences(raw, direction)
    report: dict[str, Any] = {"held_out_sentences": len(held), "dropped_pairs": {}}
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(raw.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        split, pair, lang = path.name.split(".", 2)[0], path.name.split(".")[1], path.name.rsplit(".", 1)[-1]
        if split != "train":
            atomic_copy(path, out / path.name)
            continue
        s, t = pair.split("-")
        other = raw / f"train.{pair}.{t if lang == s else s}"
        if lang != s:  # each pair is filtered once, from its source file
            continue
        keep_src, keep_tgt, dropped = [], [], 0
        for a, b in read_pairs(path, other):
            if norm(a) in held or norm(b) in held:
                dropped += 1
                continue
            keep_src.append(a)
            keep_tgt.append(b)
            if max_lines is not None and len(keep_src) >= max_lines:
                break
        write_lines(out / path.name, keep_src)
        write_lines(out / other.name, keep_tgt)
        report["dropped_pairs"][pair] = dropped
    return report


def mono_tokens(mono: Path, langs: Sequence[str]) -> dict[str, int]:
    """Tokens (SentencePiece pieces + one end-of-sentence each) of every language's train split."""
    from fairseq.data import data_utils

    out = {}
    for lang in langs:
        ds = data_utils.load_indexed_dataset(str(mono / lang / "train"), None, "mmap")
        if ds is None:
            raise InputError(f"{mono / lang / 'train'}: no monolingual data for {lang}")
        out[lang] = int(ds.sizes.sum())
    return out


def alignment_score(shares: dict[str, float], direction: tuple[str, str]) -> float:
    """Isik et al. (2024) Eq. 2: P_src P_tgt + 0.7 P_src + 0.8 P_tgt (1 for a 50/50 src/tgt mixture)."""
    ps, pt = shares.get(direction[0], 0.0), shares.get(direction[1], 0.0)
    return ps * pt + 0.7 * ps + 0.8 * pt


def condition_stats(tokens: dict[str, float], p: Profile) -> dict[str, Any]:
    block = p.tokens_per_sample - 2
    out = {}
    for cond, langs in p.conditions.items():
        total = sum(tokens[lang] for lang in langs)
        shares = {lang: tokens[lang] / total for lang in langs}
        out[cond] = {"languages": list(langs), "tokens": total, "shares": shares,
                     "blocks": int(sum(math.ceil(tokens[lang] / block) for lang in langs)),
                     "alignment": alignment_score(shares, p.direction)}
    return out


def update_grid(p: Profile, blocks: int) -> list[int]:
    """u_max / 2^k for k = points-1 .. 0, u_max the largest multiple of 2^(points-1) updates that
    stays within ``epoch_fraction`` of ``blocks`` and ``max_pretrain_tokens``."""
    per_update = p.batch_size * p.update_freq
    u_max = min(int(p.epoch_fraction * blocks / per_update), int(p.max_pretrain_tokens / p.tokens_per_update))
    step = 2 ** (p.points - 1)
    u_max -= u_max % step
    if u_max < step:
        raise InputError(f"too little pretraining text for {p.points} D points: {blocks} blocks of "
                         f"{p.tokens_per_sample} tokens give {u_max} updates of {per_update} blocks; use fewer points")
    return [u_max >> k for k in range(p.points - 1, -1, -1)]


# ------------------------------------------------------------------------------------------ pretrain

def pretrain_args(p: Profile, mono: Path, langs: Sequence[str], train_langs: Sequence[str], save_dir: Path,
                  max_update: int) -> list[str]:
    from mtkit.plugin import user_dir

    return [
        fairseq_bin("fairseq-train"), str(mono), "--user-dir", user_dir(), *p.device,
        "--task", "multilingual_denoising_mtkit", "--langs", ",".join(langs), "--train-langs", ",".join(train_langs),
        "--no-resampling", "--add-lang-token", "--multilang-sampling-alpha", "1.0",
        "--mask", "0.35", "--mask-random", "0.1", "--mask-length", "span-poisson", "--poisson-lambda", "3.5",
        "--replace-length", "1", "--permute-sentences", "1", "--rotate", "0", "--insert", "0",
        "--tokens-per-sample", str(p.tokens_per_sample), "--sample-break-mode", "none",
        "--arch", "mbart_base", *p.arch, "--encoder-normalize-before", "--decoder-normalize-before",
        "--layernorm-embedding", "--share-all-embeddings",
        "--criterion", "cross_entropy", "--optimizer", "adam", "--adam-eps", "1e-06", "--adam-betas", "(0.9, 0.98)",
        "--lr-scheduler", "inverse_sqrt", "--lr", str(p.pretrain_lr), "--warmup-updates", str(p.pretrain_warmup),
        "--clip-norm", "0.1", "--dropout", "0.1", "--attention-dropout", "0.1", "--weight-decay", "0.01",
        "--batch-size", str(p.batch_size), "--update-freq", str(p.update_freq), "--required-batch-size-multiple", "1",
        "--max-update", str(max_update), "--seed", "1", "--save-dir", str(save_dir), "--no-epoch-checkpoints",
        "--save-interval-updates", "0", "--disable-validation", "--num-workers", "0", "--data-buffer-size", "0",
        "--log-format", "json", "--log-interval", "1", "--no-progress-bar",
    ]


def segment_tokens(records: Sequence[tuple[str, dict[str, Any]]], start: int, end: int) -> dict[str, Any]:
    """Tokens of updates start+1..end from fairseq's per-update ``train_inner`` records."""
    per_update: dict[int, float] = {}
    epochs: set[int] = set()
    for tag, rec in records:
        if tag == "train_inner" and "num_updates" in rec:
            n = int(float(rec["num_updates"]))
            if start < n <= end:
                per_update[n] = float(rec["wpb"])  # the update's tokens, all --update-freq batches
                epochs.add(int(float(rec["epoch"])))
    missing = [n for n in range(start + 1, end + 1) if n not in per_update]
    if missing:
        raise MtkitError(f"fairseq logged no token count for {len(missing)} updates of {start + 1}..{end} "
                         f"(first {missing[:5]}); was --log-interval 1 overridden?")
    return {"from": start, "to": end, "tokens": sum(per_update.values()), "epochs": sorted(epochs)}


def pretrain(p: Profile, mono: Path, langs: Sequence[str], cond: str, grid: Sequence[int], work: Path) -> list[dict]:
    """Train ``cond``'s denoising run segment by segment; returns one record per D point."""
    from mtkit.tune.fairseq_run import run_fairseq, thread_env

    save = work / "pretrain" / cond
    state_file = save / "segments.json"
    segments = json.loads(state_file.read_text(encoding="utf-8")) if state_file.exists() else []
    done = {s["to"] for s in segments}
    start = max(done, default=0)
    for u in grid:
        if u in done:
            continue
        t0 = time.monotonic()
        cmd = pretrain_args(p, mono, langs, p.conditions[cond], save, u)
        logger.info("pretrain %s: updates %d..%d", cond, start, u)
        log = run_fairseq(cmd, thread_env(p.threads), save / "train.log", niceness=os.nice(0))
        seg = segment_tokens(log.records, start, u)
        seg.update(wall_s=time.monotonic() - t0, startup_s=log.startup_s,
                   checkpoint=str(save / f"checkpoint_u{u}.pt"))
        atomic_copy(save / "checkpoint_last.pt", seg["checkpoint"])
        segments.append(seg)
        write_json(state_file, segments, indent=1)
        start = u
    points, tokens = [], 0.0
    for seg in sorted(segments, key=lambda s: s["to"]):
        tokens += seg["tokens"]
        points.append({"condition": cond, "updates": seg["to"], "pretrain_tokens": tokens, "epochs": seg["epochs"],
                       "checkpoint": seg["checkpoint"], "wall_s": seg["wall_s"], "startup_s": seg["startup_s"]})
    return [pt for pt in points if pt["updates"] in set(grid)]


# ------------------------------------------------------------------------------------------ finetune

def finetune_args(p: Profile, databin: Path, langs_file: Path) -> list[str]:
    src, tgt = p.direction
    return [
        str(databin), *p.device, "--task", "translation_multi_simple_epoch", "--lang-dict", str(langs_file),
        "--lang-pairs", f"{src}-{tgt}", "--lang-tok-style", "mbart", "--encoder-langtok", "src", "--decoder-langtok",
        "--arch", "mbart_base", *p.arch, "--encoder-normalize-before", "--decoder-normalize-before",
        "--layernorm-embedding", "--share-all-embeddings",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        "--optimizer", "adam", "--adam-eps", "1e-06", "--adam-betas", "(0.9, 0.98)",
        "--lr-scheduler", "inverse_sqrt", "--lr", str(p.ft_lr), "--warmup-updates", str(p.ft_warmup),
        "--dropout", "0.1", "--attention-dropout", "0.0", "--weight-decay", "0.0",
        "--max-tokens", str(p.ft_max_tokens), "--update-freq", str(p.ft_update_freq), "--seed", "1",
        "--num-workers", "0", "--data-buffer-size", "0", "--log-interval", "50",
    ]


def finetune_configs(p: Profile, points: Sequence[dict]) -> list[dict[str, Any]]:
    """One configuration per (checkpoint, seed), then the from-scratch baseline per seed."""
    configs = [{"finetune-from-model": pt["checkpoint"], "seed": s} for pt in points for s in p.ft_seeds]
    return configs + [{"seed": s} for s in p.ft_seeds]


def test_cross_entropy(checkpoint: str | os.PathLike, split: str = "test", max_lines: int | None = None,
                       device: str = "cpu") -> dict[str, float]:
    """Teacher-forced cross-entropy of a translation checkpoint on ``split`` of its own task's data:
    nats per target token (fairseq's ``nll_loss`` without label smoothing), and the token count."""
    import torch
    from fairseq import checkpoint_utils, utils

    from mtkit import plugin

    plugin.register()
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)])
    model = models[0].to(device).eval()
    task.load_dataset(split)
    dataset = task.dataset(split)
    indices = None if max_lines is None else list(range(min(max_lines, len(dataset))))
    criterion = task.build_criterion(cfg.criterion)
    itr = task.get_batch_iterator(
        dataset=dataset, max_tokens=4096, max_sentences=None, seed=1, num_workers=0,
        max_positions=utils.resolve_max_positions(task.max_positions(), model.max_positions()),
    ).next_epoch_itr(shuffle=False)
    nll, ntokens, sentences = 0.0, 0, 0
    with torch.no_grad():
        for sample in itr:
            if indices is not None:
                keep = [i for i, sid in enumerate(sample["id"].tolist()) if sid < len(indices)]
                if not keep:
                    continue
                if len(keep) != len(sample["id"]):
                    raise MtkitError("--test-lines with the cross-entropy needs whole batches; use the whole split")
            if device != "cpu":
                sample = utils.move_to_cuda(sample)
            _, _, log = task.valid_step(sample, model, criterion)
            nll += float(log["nll_loss"])
            ntokens += int(log["ntokens"])
            sentences += int(log["nsentences"])
    return {"ce_nats": nll / ntokens, "tokens": ntokens, "sentences": sentences}


# ----------------------------------------------------------------------------------------------- fit

RUN_COLUMNS = ["condition", "seed", "pretrain_updates", "pretrain_tokens", "epoch_fraction", "bleu", "chrf",
               "test_ce", "valid_ce", "test_sentences", "test_tokens", "trial"]


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def mean_over_seeds(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per pretraining point: the metrics averaged over finetuning seeds."""
    by_d: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_d.setdefault(r["pretrain_updates"], []).append(r)
    out = []
    for u in sorted(by_d):
        rs = by_d[u]
        row = dict(rs[0])
        for key in ("bleu", "chrf", "test_ce", "valid_ce"):
            row[key] = sum(r[key] for r in rs) / len(rs)
        row["seeds"] = len(rs)
        out.append(row)
    return out


def fit_plan(conditions: Sequence[str], n_points: int, fits: Path, csv_dir: Path) -> list[dict[str, Any]]:
    """The ``mtkit scaling fit`` commands: each condition x law x fit-on (all but the largest D, all
    but the two largest)."""
    plan = []
    for cond in conditions:
        for law, y in (("bleu", "bleu"), ("ce", "test_ce")):
            for k in sorted({n_points - 1, n_points - 2}, reverse=True):
                if k < 4:  # 3 parameters: at least 4 runs to fit
                    continue
                name = f"{cond}_{law}_fit{k}"
                cmd = ["mtkit", "scaling", "fit", str(csv_dir / f"runs_{cond}.csv"), "--law", law,
                       "--d", "pretrain_tokens", "--y", y, "--fit-on", str(k), "--bootstrap", "200", "--seed", "0",
                       "--plot", str(fits / f"{name}.png"), "--out", str(fits / f"{name}.json"), "--json"]
                plan.append({"name": name, "condition": cond, "law": law, "fit_on": k, "cmd": cmd})
    return plan


def run_fit(item: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """Run one fit; a failed fit (e.g. a BLEU of 0, which the log-law cannot take) is a result too."""
    mtkit = Path(sys.executable).parent / "mtkit"
    cmd = [str(mtkit) if mtkit.exists() else "mtkit", *item["cmd"][1:]]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        logger.warning("fit %s failed: %s", item["name"], msg)
        return {**item, "error": msg}
    return {**item, "report": json.loads(proc.stdout)}


# ------------------------------------------------------------------------------------------ reports

def overview_png(rows: Sequence[dict[str, Any]], scratch: dict[str, Any] | None) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    panels = (("bleu", "test BLEU"), ("chrf", "test chrF++"), ("test_ce", "test cross-entropy (nats/token)"))
    for i, (key, label) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        for cond in dict.fromkeys(r["condition"] for r in rows):
            pts = [r for r in rows if r["condition"] == cond]
            ax.plot([r["pretrain_tokens"] for r in pts], [r[key] for r in pts], "o-", label=f"pretrained: {cond}")
        if scratch is not None:
            ax.axhline(scratch[key], color="grey", ls="--", label="from scratch")
        ax.set_xscale("log")
        ax.set_xlabel("pretraining tokens D")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _g(x: Any, digits: int = 4) -> str:
    if x is None:
        return "undetermined"
    return f"{x:.{digits}g}" if isinstance(x, (int, float)) else str(x)


def summary_md(doc: dict[str, Any], rows: Sequence[dict[str, Any]], scratch: dict[str, Any] | None,
               fits: Sequence[dict[str, Any]]) -> str:
    p = doc["profile"]
    lines = [f"# Downstream scaling sweep ({p['name']} profile)", "",
             f"Command: `{doc['command']}`", "",
             f"Pretraining: denoising, {p['tokens_per_sample']}-token blocks x {p['batch_size'] * p['update_freq']} "
             f"per update ({p['tokens_per_sample'] * p['batch_size'] * p['update_freq']} tokens), each block at most "
             f"once; checkpoints at {doc['grid']} updates. Finetuning: {p['direction'][0]}->{p['direction'][1]}, "
             f"{p['ft_updates']} updates per run, seeds {p['ft_seeds']}; test: {doc['test']['sentences']} sentences "
             f"({doc['test']['tokens']} target tokens), beam {p['beam']}.", "",
             "| condition | languages (share of tokens) | alignment score | corpus tokens |", "|---|---|---:|---:|"]
    for cond, st in doc["data"]["conditions"].items():
        shares = ", ".join(f"{k} {100 * v:.0f} %" for k, v in st["shares"].items())
        lines.append(f"| {cond} | {shares} | {st['alignment']:.2f} | {st['tokens']:,} |")
    lines += ["", "| condition | updates | D (tokens) | share of an epoch | BLEU | chrF++ | test CE (nats) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['condition']} | {r['pretrain_updates']} | {r['pretrain_tokens']:,.0f} | "
                     f"{r['epoch_fraction']:.3f} | {r['bleu']:.2f} | {r['chrf']:.2f} | {r['test_ce']:.4f} |")
    if scratch is not None:
        lines.append(f"| from scratch | 0 | 0 | 0 | {scratch['bleu']:.2f} | {scratch['chrf']:.2f} | "
                     f"{scratch['test_ce']:.4f} |")
    lines += ["", "## Fits (`mtkit scaling fit`, Huber on log y, L-BFGS-B from a grid)", "",
              "| condition | law | fitted on | parameters (95 % bootstrap interval) | held out: D, observed, predicted, "
              "relative error |", "|---|---|---:|---|---|"]
    for f in fits:
        if "error" in f:
            lines.append(f"| {f['condition']} | {f['law']} | {f['fit_on']} smallest | fit failed: {f['error']} | |")
            continue
        rep = f["report"]
        ivals = (rep.get("bootstrap") or {}).get("intervals", {})
        params = ", ".join(f"{k} {_g(v)}" + (f" ({_g(ivals[k][0], 3)}..{_g(ivals[k][1], 3)})" if k in ivals else "")
                           for k, v in rep["params"].items() if k != "A" or f["law"] != "bleu")
        held = "; ".join(f"{_g(h['d'])}: {_g(h['observed'])} vs {_g(h['predicted'])} "
                         + (f"({100 * (h['predicted'] / h['observed'] - 1):+.1f} %)" if h["predicted"] is not None else "")
                         for h in rep["held_out"]["points"]) if rep.get("held_out") else "-"
        lines.append(f"| {f['condition']} | {f['law']} | {f['fit_on']} smallest | {params} | {held} |")
    lines += ["", "Plots: overview.png (all runs), fits/<condition>_<law>_fit<K>.png (data, fit, bootstrap band).",
              "", "## Wall time of this invocation (a resumed run reuses finished stages: they show about 0)", ""]
    for stage, secs in doc["stage_seconds"].items():
        lines.append(f"- {stage}: {secs / 60:.1f} min")
    lines.append(f"- load average (1 min) at start: {doc['load_average_1min_at_start']:.1f}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- main

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", required=True, help="text folder ({split}.{src}-{tgt}.{lang}) from mtkit data")
    ap.add_argument("--work", required=True, help="work folder (databins, checkpoints, the tune run); resumable")
    ap.add_argument("--out", required=True, help="results folder (runs.csv, fits, plots, summary.md)")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="mini")
    ap.add_argument("--points", type=int, help="D points per condition (profile default)")
    ap.add_argument("--ft-updates", type=int, help="finetuning updates per run (profile default)")
    ap.add_argument("--seeds", help="finetuning seeds, comma separated (profile default)")
    ap.add_argument("--test-lines", type=int, help="score only the first N test lines (default: all)")
    ap.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="CPUs Ray may use (default: all)")
    ap.add_argument("--command", default=None, help="the command line to record in the results")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--dry", action="store_true", help="print the plan, run nothing")
    mode.add_argument("--smoke", action="store_true", help="every stage at a tiny size (a pipeline check)")
    return ap.parse_args(argv)


def profile_from(args: argparse.Namespace) -> Profile:
    p = PROFILES[args.profile]
    over: dict[str, Any] = dict(SMOKE) if args.smoke else {}
    if args.points is not None:
        over["points"] = args.points
    if args.ft_updates is not None:
        over["ft_updates"] = args.ft_updates
    if args.seeds:
        over["ft_seeds"] = tuple(int(s) for s in args.seeds.split(","))
    if args.test_lines is not None:
        over["test_lines"] = args.test_lines
    if over.get("points", p.points) < 5:
        if not args.smoke:
            raise InputError("at least 5 D points: the laws have 3 parameters and one point is held out")
    return dataclasses.replace(p, **over)


def dry_run(p: Profile, raw: Path, work: Path, out: Path) -> str:
    """The plan as text: data, D grid, every fairseq command, the finetuning grid and the fits."""
    mono, databin = work / "bin" / "databin_mono", work / "bin" / "databin"
    langs = sorted({lang for c in p.conditions.values() for lang in c} | set(p.direction))
    have = (mono / "dict.txt").exists()
    tokens = mono_tokens(mono, langs) if have else p.nominal_tokens
    stats = condition_stats(tokens, p)
    grid = update_grid(p, min(st["blocks"] for st in stats.values()))
    lines = [f"profile {p.name}: {p.direction[0]}->{p.direction[1]}; tokens per language "
             f"({'from ' + str(mono) if have else 'nominal, the data is not built yet'}):"]
    for cond, st in stats.items():
        lines.append(f"  {cond}: {st['tokens']:.3g} tokens, {st['blocks']} blocks, shares "
                     + ", ".join(f"{k} {v:.2f}" for k, v in st["shares"].items())
                     + f", alignment score {st['alignment']:.2f}")
    lines.append(f"D grid: updates {grid} x {p.tokens_per_update} tokens = "
                 + ", ".join(f"{u * p.tokens_per_update:.3g}" for u in grid) + " tokens")
    lines.append("data: " + shlex.join(["mtkit", "data", "binarize", "--raw", str(work / "raw"), "--out",
                                        str(work / "bin"), "--spm-vocab-size", str(p.spm_vocab), "--mono",
                                        *(["--max-pieces", str(p.max_pieces)] if p.max_pieces else [])]))
    for cond in p.conditions:
        lines.append(f"pretrain {cond} (one segment per grid point, the last shown):")
        lines.append("  " + shlex.join(pretrain_args(p, mono, langs, p.conditions[cond],
                                                     work / "pretrain" / cond, grid[-1])))
    n_ft = (len(p.conditions) * len(grid) + 1) * len(p.ft_seeds)
    lines.append(f"finetune: mtkit.tune.run_configs, {n_ft} configurations x {p.ft_updates} updates "
                 f"({p.cpus_per_trial:g} CPUs, {p.gpus_per_trial:g} GPUs per trial), fitness bleu on the test split:")
    lines.append("  fairseq-train " + shlex.join(finetune_args(p, databin, databin / "langs.txt")))
    points = [{"checkpoint": str(work / "pretrain" / c / f"checkpoint_u{u}.pt")} for c in p.conditions for u in grid]
    for cfg in finetune_configs(p, points)[:3] + [{"...": "..."}] + finetune_configs(p, points)[-1:]:
        lines.append(f"  {cfg}")
    lines.append("fits:")
    for item in fit_plan(list(p.conditions), len(grid), out / "fits", out):
        lines.append("  " + shlex.join(item["cmd"]))
    return "\n".join(lines)


def prepare_data(p: Profile, raw: Path, work: Path) -> dict[str, Any]:
    report_file = work / "data.json"
    if report_file.exists():
        return json.loads(report_file.read_text(encoding="utf-8"))
    t0 = time.monotonic()
    report = filter_raw(raw, work / "raw", p.direction, p.max_train_lines)
    langs = sorted({lang for c in p.conditions.values() for lang in c} | set(p.direction))
    cmd = [str(Path(sys.executable).parent / "mtkit"), "data", "binarize", "--raw", str(work / "raw"),
           "--out", str(work / "bin"), "--spm-vocab-size", str(p.spm_vocab), "--mono",
           *(["--max-pieces", str(p.max_pieces)] if p.max_pieces else [])]
    logger.info("data: %s", shlex.join(cmd))
    subprocess.run(cmd, check=True)
    tokens = mono_tokens(work / "bin" / "databin_mono", langs)
    report.update(raw=str(raw), binarize=shlex.join(cmd), tokens=tokens, conditions=condition_stats(tokens, p),
                  wall_s=time.monotonic() - t0)
    write_json(report_file, report, indent=1)
    return report


def check_no_leak(work: Path, direction: tuple[str, str], langs: Sequence[str]) -> int:
    """Held-out sentences of ``direction`` found in the binarised monolingual training data (compared
    as fairseq token ids, read back with fairseq's own dataset reader)."""
    import sentencepiece as spm
    from fairseq.data import data_utils

    from data_prep.steps import databin

    sp = spm.SentencePieceProcessor(model_file=str(work / "bin" / "spm.model"))
    mono = work / "bin" / "databin_mono"
    idmap = databin.id_map(sp, databin.read_dictionary(mono / "dict.txt"))
    held = {tuple(int(i) for i in idmap[sp.encode(s)]) for s in held_out_sentences(work / "raw", direction)}
    found = 0
    for lang in langs:
        ds = data_utils.load_indexed_dataset(str(mono / lang / "train"), None, "mmap")
        if ds is None:
            raise MtkitError(f"{mono / lang / 'train'}: no binarised monolingual data")
        found += sum(1 for i in range(len(ds)) if tuple(ds[i][:-1].tolist()) in held)
    return found


def finetune(p: Profile, work: Path, points: list[dict], num_cpus: int) -> Any:
    from mtkit.tune import run_configs

    databin = work / "bin" / "databin"
    configs = finetune_configs(p, points)
    out = work / "finetune"
    resume = (out / "tune_spec.json").exists()
    if resume:
        old = json.loads((out / "tune_spec.json").read_text(encoding="utf-8"))
        if old.get("points") != configs or old.get("budget") != p.ft_updates:
            raise InputError(f"{out} holds a finetuning sweep with other configurations; remove it or use "
                             "another --work")
    translation = {"raw_dir": str(work / "raw"), "spm": str(work / "bin" / "spm.model"),
                   "dictionary": str(databin / "dict.txt"), "langs": str(databin / "langs.txt"),
                   "directions": "-".join(p.direction), "max_sentences": p.test_lines, "beam": p.beam,
                   "split": "test"}
    return run_configs(finetune_args(p, databin, databin / "langs.txt"), configs, p.ft_updates, out, resume=resume,
                       progress=True, fitness="bleu", translation=translation, cpus_per_trial=p.cpus_per_trial,
                       gpus_per_trial=p.gpus_per_trial, threads=p.threads, num_cpus=num_cpus, seed=1)


def collect(p: Profile, res: Any, points: list[dict], blocks: dict[str, int], work: Path) -> list[dict[str, Any]]:
    """One row per finetuning run: pretraining point, BLEU, chrF++, test and valid cross-entropy."""
    by_ckpt = {pt["checkpoint"]: pt for pt in points}
    cache_file = work / "test_ce.json"
    cache = json.loads(cache_file.read_text(encoding="utf-8")) if cache_file.exists() else {}
    device = "cuda" if p.gpus_per_trial > 0 else "cpu"
    rows = []
    for r in res.final:
        if r["updates"] != p.ft_updates:
            raise MtkitError(f"trial {r['trial']} stopped at {r['updates']} of {p.ft_updates} updates "
                             f"(see {work / 'finetune'}); run the command again to resume")
        ckpt = str(Path(r["checkpoint"]) / "checkpoint_last.pt")
        if ckpt not in cache:
            cache[ckpt] = test_cross_entropy(ckpt, "test", device=device)
            write_json(cache_file, cache, indent=1)
        pt = by_ckpt.get(r["hp"].get("finetune-from-model"))
        cond = pt["condition"] if pt else "scratch"
        rows.append({"condition": cond, "seed": r["hp"]["seed"], "pretrain_updates": pt["updates"] if pt else 0,
                     "pretrain_tokens": pt["pretrain_tokens"] if pt else 0.0,
                     "epoch_fraction": (pt["updates"] * p.batch_size * p.update_freq / blocks[cond]) if pt else 0.0,
                     "bleu": float(r["bleu"]), "chrf": float(r["chrf++"]), "test_ce": cache[ckpt]["ce_nats"],
                     "valid_ce": float(r["valid_nll"]) * math.log(2), "test_sentences": cache[ckpt]["sentences"],
                     "test_tokens": cache[ckpt]["tokens"], "trial": r["trial"]})
    order = {c: i for i, c in enumerate([*p.conditions, "scratch"])}
    return sorted(rows, key=lambda r: (order[r["condition"]], r["pretrain_updates"], r["seed"]))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    p = profile_from(args)
    raw, work, out = Path(args.raw).resolve(), Path(args.work).resolve(), Path(args.out).resolve()
    if args.dry:
        print(dry_run(p, raw, work, out))
        return 0
    if not raw.is_dir():
        raise InputError(f"--raw {raw}: no such folder (build it with mtkit data gettext / ml50)")
    load = os.getloadavg()[0]
    stage_s: dict[str, float] = {}
    t0 = time.monotonic()
    data = prepare_data(p, raw, work)
    stage_s["data"] = time.monotonic() - t0
    langs = [line.strip() for line in read_lines(work / "bin" / "databin" / "langs.txt") if line.strip()]
    train_langs = sorted({lang for c in p.conditions.values() for lang in c})
    leaks = check_no_leak(work, p.direction, train_langs)
    if leaks:
        raise MtkitError(f"{leaks} held-out sentences of {'-'.join(p.direction)} are in the pretraining text")
    blocks = {c: st["blocks"] for c, st in data["conditions"].items()}
    grid = update_grid(p, min(blocks.values()))
    t0 = time.monotonic()
    # the conditions' pretraining runs are independent: side by side on CPUs, one after the other on a GPU
    parallel = 1 if p.gpus_per_trial > 0 else max(1, min(len(p.conditions), args.num_cpus // p.threads))
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        jobs = [pool.submit(pretrain, p, work / "bin" / "databin_mono", langs, cond, grid, work)
                for cond in p.conditions]
        points = [pt for job in jobs for pt in job.result()]
    for pt in points:
        if pt["epochs"] != [1] or pt["updates"] * p.batch_size * p.update_freq > blocks[pt["condition"]]:
            raise MtkitError(f"pretraining {pt['condition']} left its first epoch by update {pt['updates']}")
    stage_s["pretrain"] = time.monotonic() - t0
    t0 = time.monotonic()
    res = finetune(p, work, points, args.num_cpus)
    stage_s["finetune"] = time.monotonic() - t0
    t0 = time.monotonic()
    rows = collect(p, res, points, blocks, work)
    stage_s["test cross-entropy"] = time.monotonic() - t0
    pretrained = mean_over_seeds([r for r in rows if r["condition"] != "scratch"]) if len(p.ft_seeds) > 1 else \
        [r for r in rows if r["condition"] != "scratch"]
    scratch_rows = [r for r in rows if r["condition"] == "scratch"]
    scratch = mean_over_seeds(scratch_rows)[0] if scratch_rows else None
    (out / "fits").mkdir(parents=True, exist_ok=True)
    write_text(out / "runs.csv", csv_text(rows, RUN_COLUMNS))
    for cond in p.conditions:
        write_text(out / f"runs_{cond}.csv", csv_text([r for r in pretrained if r["condition"] == cond], RUN_COLUMNS))
    t0 = time.monotonic()
    plan = fit_plan(list(p.conditions), len(grid), out / "fits", out)
    fits = [run_fit(item, out) for item in plan]
    stage_s["fit"] = time.monotonic() - t0
    write_bytes(out / "overview.png", overview_png(pretrained, scratch))
    write_text(out / "commands.txt", "\n".join(shlex.join(f["cmd"]) for f in plan) + "\n")
    doc = {"command": args.command or shlex.join([sys.argv[0], *(argv or sys.argv[1:])]),
           "profile": dataclasses.asdict(p), "grid": grid, "data": data,
           "leaked_sentences_after_filter": leaks,
           "pretrain": [{k: v for k, v in pt.items() if k != "checkpoint"} for pt in points],
           "test": {"sentences": rows[0]["test_sentences"], "tokens": rows[0]["test_tokens"]},
           "stage_seconds": stage_s, "load_average_1min_at_start": load,
           "versions": versions(("mtkit", "torch", "fairseq", "ray", "sacrebleu")),
           "fits": [{k: v for k, v in f.items() if k != "cmd"} for f in fits]}
    write_json(out / "sweep.json", doc, indent=1)
    write_json(out / "pretrain.json", doc["pretrain"], indent=1)
    write_text(out / "summary.md", summary_md(doc, pretrained, scratch, fits))
    logger.info("wrote %s", out / "summary.md")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (InputError, MtkitError) as e:
        print(f"sweep.py: error: {e}", file=sys.stderr)
        sys.exit(2)
