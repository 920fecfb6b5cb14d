"""Qiu et al. (2025) claim: balancing expert load over the global batch instead of each micro-batch
lets experts specialise by domain (here: language) and lowers the loss; with micro-batch balancing
no expert exceeds about 0.15 top-k selection frequency for any domain, with global balancing many
exceed 0.2. Tested where the paper says it matters: small micro-batches (``--max-tokens 256``) with
gradient accumulation (``--update-freq 4``), 2 data-parallel ranks (gloo) and language-homogeneous
micro-batches (``--homogeneous-batches``: every micro-batch is one direction).

Runs: micro vs global balance with homogeneous micro-batches, 3 seeds each; one seed of each with
fairseq's mixed micro-batches as a control. The MoE: every FFN of a 2+2-layer model is 16 experts,
top-2, dropless (as in the paper), balance loss weight 0.01. Measured at the same update count:
per MoE layer and language the top-k selection frequency of every expert (``mtkit.moe_usage`` on the
valid sets), how many exceed 0.2 and 3.2x the uniform share (the paper's 0.2 at 4 of 64 experts),
the maximum, the criterion's ``moe_lang_specialisation`` (I(language; expert) / H(language)), valid
nll per direction; and the time per update of global vs micro balance on 2 ranks, each global run
paired with the micro run of its seed, run one after the other.

    python benchmarks/seed_claims/global_balance/run.py                  # CPU, mtkit tune (Ray)
    python benchmarks/seed_claims/global_balance/run.py --phases speed   # interleaved speed pairs only
    python benchmarks/seed_claims/global_balance/run.py --runner local --cores 16 --deadline 240 \\
        --phases train,usage                                             # on a bigger machine

Phases: ``train``, ``usage`` (expert frequencies from each run's checkpoint at the evaluated
budget), ``speed`` (short interleaved micro/global pairs, timing only), ``analyse`` (results.json,
report.md, plots). Environment: SEED_CLAIMS_DATA (the corpus of ../data.sh).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

HERE = Path(__file__).resolve().parent
SEEDS = (1, 2, 3)
EXPERTS = 16
TOP_K = 2
THRESHOLD = 0.2  # the paper's absolute threshold (Fig. 4/5)
RELATIVE = 3.2  # the paper's 0.2 over its uniform share 4/64
SETTINGS = {"cpu": {"updates": 1500, "interval": 250}, "big": {"updates": 4000, "interval": 250}}


def runs() -> list[tuple[str, str, bool, int]]:
    """(name, balance, homogeneous, seed), each global run right after the micro run of its seed."""
    out = []
    for seed in SEEDS:
        out += [(f"micro_s{seed}", "micro", True, seed), (f"global_s{seed}", "global", True, seed)]
    out += [("mixed_micro_s1", "micro", False, 1), ("mixed_global_s1", "global", False, 1)]
    return out


def train_args(corpus: common.Corpus, balance: str, homogeneous: bool, seed: int, updates: int,
               interval: int) -> list[str]:
    return [*common.task_args(corpus, extra=["--homogeneous-batches"] if homogeneous else []), "--cpu",
            "--arch", "transformer_moe", "--encoder-layers", "2", "--decoder-layers", "2",
            "--encoder-embed-dim", "128", "--decoder-embed-dim", "128", "--encoder-ffn-embed-dim", "256",
            "--decoder-ffn-embed-dim", "256", "--encoder-attention-heads", "4", "--decoder-attention-heads", "4",
            "--share-all-embeddings", "--encoder-normalize-before", "--decoder-normalize-before",
            "--max-source-positions", "128", "--max-target-positions", "128",
            "--moe-expert-count", str(EXPERTS), "--moe-freq", "1", "--moe-expert-ffn-dim", "128",
            "--moe-second-expert-policy", "all", "--moe-train-capacity-token-fraction", "1.0",
            "--moe-balance", balance, "--criterion", "moe_label_smoothed_cross_entropy", "--moe-gate-loss-wt", "0.01",
            "--moe-log-lang-usage", "--label-smoothing", "0.1", "--dropout", "0.1", "--seed", str(seed),
            "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "0.002", "--lr-scheduler", "inverse_sqrt",
            "--warmup-updates", "200", "--max-tokens", "256", "--update-freq", "4", "--num-workers", "0",
            "--log-interval", "25", "--max-update", str(updates), "--validate-interval-updates", str(interval),
            "--save-interval-updates", str(interval), "--keep-interval-updates", "-1", "--no-epoch-checkpoints",
            "--ddp-backend", "legacy_ddp"]


def jobs(corpus: common.Corpus, work: Path, s: dict[str, int], niceness: int, extra: list[str]) -> list[common.Job]:
    return [common.Job(name, train_args(corpus, bal, homo, seed, s["updates"], s["interval"]) + extra,
                       work / "runs" / name, ranks=2, threads=1, niceness=niceness) for name, bal, homo, seed in runs()]


def train(corpus: common.Corpus, work: Path, s: dict[str, int], args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    # local runner: one continuous run each, every validated checkpoint kept (weights only)
    js = jobs(corpus, work, s, args.niceness, ["--no-save-optimizer-state"] if args.runner == "local" else [])
    if args.runner == "tune":
        res = common.run_tune(js, work / "tune", interval=s["interval"], budget=s["updates"], cpus_per_trial=2)
        status: dict[str, Any] = {"runner": "mtkit tune", "trials": len(res.final), "errors": res.errors}
    else:
        status = {"runner": "local", "jobs": common.run_local(js, cores=args.cores, deadline_s=args.deadline)}
    status["wall_s"] = round(time.monotonic() - t0, 1)
    common.write_results(work / "train_status.json", status)


def run_dirs(work: Path) -> dict[str, Path]:
    return common.run_dirs(work, [r[0] for r in runs()])


def _usage_one(name: str, ckpt: str, corpus_root: str) -> tuple[str, dict[str, Any]]:
    """Top-k expert frequencies of one run's checkpoint on the valid set of every direction."""
    from mtkit.model_folder import build_model, find_files
    from mtkit.moe_usage import ExpertUsage, run_directions

    corpus = common.Corpus(Path(corpus_root))
    lm = build_model(find_files(ckpt, dict_path=corpus.dictionary, spm_path=corpus.spm, langs_path=corpus.langs_file))
    tasks = [(*direction.split("-"), lm.task_for(*direction.split("-"))) for direction in corpus.directions()]
    u = run_directions(lm.model, tasks, ExpertUsage(list(lm.info.langs)), split="valid", top_k=TOP_K)
    return name, {"checkpoint": ckpt, "summary": u.summary(threshold=THRESHOLD, relative=RELATIVE),
                  "counts": {n: {"topk": la.topk.tolist(), "top1": la.top1.tolist(), "tokens": la.tokens.tolist()}
                             for n, la in u.layers.items()}}


def usage(corpus: common.Corpus, work: Path, s: dict[str, int], jobs: int = 1) -> None:
    """Top-k expert frequencies per layer and language on the valid sets, each run at the budget
    (``jobs`` runs at once)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    dirs = run_dirs(work)
    budget, excluded = common.evaluated_budget(dirs, s["updates"])
    if budget == 0:
        raise SystemExit("no run has a validated checkpoint")
    out: dict[str, Any] = {"budget": budget, "excluded": excluded, "runs": {}, "langs": corpus.langs}
    todo = [(name, str(common.checkpoint_at(d, budget, s["updates"])), str(corpus.root))
            for name, d in dirs.items() if name not in excluded]
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        for name, res in pool.map(_usage_one, *zip(*todo)):
            out["runs"][name] = res
            common.logger.info("expert usage of %s at %d updates done", name, budget)
    common.write_results(work / "usage.json", out)


def speed(corpus: common.Corpus, work: Path, args: argparse.Namespace) -> None:
    """``--speed-pairs`` pairs of short runs (micro, then global, same seed and data), 2 ranks each;
    seconds per update from fairseq's train_wall after the first log interval."""
    pairs = []
    for i in range(args.speed_pairs):
        names = {}
        for bal in ("micro", "global"):
            name = f"speed{i}_{bal}"
            d = work / "speed" / name
            if d.exists():
                for f in d.iterdir():
                    f.unlink()
            job = common.Job(name, train_args(corpus, bal, True, 1, args.speed_updates, args.speed_updates) +
                             ["--log-interval", "10", "--no-save", "--disable-validation"], d, ranks=2, threads=1,
                             niceness=args.niceness)
            res = common.run_local([job], cores=2)[name]
            names[bal] = {**res, **(common.step_seconds(job.log) or {})}
        ratio = names["global"]["seconds_per_update"] / names["micro"]["seconds_per_update"]
        pairs.append({"micro": names["micro"], "global": names["global"], "ratio_global_over_micro": round(ratio, 4)})
        common.logger.info("pair %d: global/micro = %.3f (load %.1f)", i, ratio, names["micro"]["load_average_at_start"])
    common.write_results(work / "speed.json", {"pairs": pairs, "updates_per_run": args.speed_updates,
                                              "environment": common.environment()})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SETTINGS), default="cpu",
                    help="cpu: 8 two-rank runs, one at a time on a 2-core machine: about 2 hours with --runner local "
                         "(train_wall_s in results_cpu/results.json); resumable with the same command. "
                         "big: more updates (a machine with more cores)")
    ap.add_argument("--runner", choices=("tune", "local"), default="tune")
    ap.add_argument("--phases", default="train,usage,speed,analyse")
    ap.add_argument("--work", default=None, help="work folder (default work/seed_claims/global_balance_SCALE)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="local runner: processes at once")
    ap.add_argument("--deadline", type=float, default=None, help="local runner: stop runs after this many seconds")
    ap.add_argument("--niceness", type=int, default=0, help="local runner: nice level of the training processes")
    ap.add_argument("--jobs", type=int, default=1, help="usage phase: runs analysed at once")
    ap.add_argument("--speed-pairs", type=int, default=5)
    ap.add_argument("--speed-updates", type=int, default=60)
    ap.add_argument("--updates", type=int, default=None, help="override the scale's update budget")
    ap.add_argument("--interval", type=int, default=None, help="override the validation interval")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default 1,2,3)")
    args = ap.parse_args(argv)
    common.setup_logging()
    s, seeds, corpus, work, phases = common.prepare_run(args, SETTINGS, ("updates", "interval"), "global_balance")
    if seeds:
        global SEEDS
        SEEDS = seeds
    if "train" in phases:
        train(corpus, work, s, args)
    if "usage" in phases:
        usage(corpus, work, s, jobs=args.jobs)
    if "speed" in phases:
        speed(corpus, work, args)
    if "analyse" in phases:
        import report

        report.analyse(corpus, work, s, args.scale, runs(), train_args(corpus, "global", True, 1, s["updates"],
                                                                      s["interval"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
